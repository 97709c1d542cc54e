/**
 * JSON body rules as policies. A body is buffered only on routes with rules,
 * only when it is JSON (other content types and encoded bodies pass
 * untouched), and only up to the direction's `max_body_bytes`; past that it
 * passes unmodified with a warning (`on_oversize: pass`) or is refused
 * (`reject`: 413 for a request, 502 for a response).
 */
import type { RequestContext } from "../core/context.ts";
import type { NamedPolicy } from "../core/pipeline.ts";
import { GatewayError } from "../core/errors.ts";
import type { Logger } from "../observe/logger.ts";
import { upstreamFailure } from "../proxy/proxy.ts";
import { bufferUpTo, isEncoded, isJsonType, isRepeatedType, withBody } from "./buffer.ts";
import { bodyOf, responseFields } from "../core/parsed_response.ts";
import type { JsonTransform } from "./json_rules.ts";
import { JsonDepthError, MAX_JSON_DEPTH, parseExactJson } from "./exact_json.ts";
import { declaredLength } from "../core/header_fields.ts";

export interface JsonBodyOptions {
  route: string;
  maxBytes: number;
  onOversize: "pass" | "reject";
  logger: Logger;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const TWO_TYPES = "The request has more than one Content-Type";
const encoder = new TextEncoder();

function warnOversize(o: JsonBodyOptions, direction: string): void {
  o.logger.every(
    `json-oversize:${o.route}:${direction}`,
    10_000,
    "warn",
    "JSON body larger than the transform buffer passed unmodified",
    { route: o.route, direction, max_body_bytes: o.maxBytes },
  );
}

/** Fields that vouch for the exact bytes of a body (RFC 9530 digests, RFC 1864 MD5). */
const BODY_DIGESTS = ["content-digest", "repr-digest", "content-md5"];

/**
 * An answer whose body the rules rewrite (or, for a HEAD, would): the
 * upstream's length and digests describe other bytes, and its strong ETag
 * another representation, so the ETag is made weak (as a compressing proxy does).
 */
function describingRewrite(res: Response, head: boolean): Response {
  const fields = responseFields(res);
  if (head) fields.delete("content-length");
  for (const name of BODY_DIGESTS) fields.delete(name);
  const etag = fields.get("etag");
  if (etag !== null && etag.startsWith('"')) fields.set("etag", `W/${etag}`);
  return res;
}

/**
 * Parses, transforms and re-serialises (numbers as written); `invalid` if the
 * bytes are not JSON, `too_deep` if they nest past what the rules may read.
 */
function rewrite(
  bytes: Uint8Array,
  transform: JsonTransform,
): Uint8Array<ArrayBuffer> | "invalid" | "too_deep" {
  let value: unknown;
  try {
    value = parseExactJson(decoder.decode(bytes));
  } catch (e) {
    return e instanceof JsonDepthError ? "too_deep" : "invalid";
  }
  return encoder.encode(JSON.stringify(transform(value)));
}

const TOO_DEEP = `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`;

export function requestJsonPolicy(transform: JsonTransform, o: JsonBodyOptions): NamedPolicy {
  const tooLarge = `The JSON request body is larger than ${o.maxBytes} bytes`;
  const oversize = (ctx: RequestContext) => {
    if (o.onOversize === "reject") return ctx.refuse("payload_too_large", { message: tooLarge });
    warnOversize(o, "request");
    return null;
  };
  return {
    name: "request_json",
    policy: async (ctx, next) => {
      const headers = ctx.headers;
      if (ctx.body === null) return next(ctx);
      const type = headers.get("content-type");
      // The upstream may read the first of two types as JSON while the rules skip the body.
      if (type !== null && isRepeatedType(type)) {
        return ctx.refuse("bad_request", { message: TWO_TYPES });
      }
      if (!isJsonType(type)) return next(ctx);
      // An upstream that decodes it would read fields the rules never saw.
      if (isEncoded(headers.get("content-encoding"))) {
        return ctx.refuse("unsupported_media_type", {
          message: "A JSON body on this route must not have a Content-Encoding",
          headers: { "accept-encoding": "identity" },
        });
      }
      if (ctx.bodyLength !== null && ctx.bodyLength > o.maxBytes) return oversize(ctx) ?? next(ctx);
      let buffered;
      try {
        buffered = await bufferUpTo(ctx.body, o.maxBytes);
      } catch (e) {
        if (e instanceof GatewayError) return ctx.refuse(e.code, e.details);
        if (ctx.signal.aborted) return ctx.refuse("client_closed_request");
        return ctx.refuse("bad_request", { message: "The request body could not be read" });
      }
      if (buffered.kind === "over") {
        ctx.body = buffered.body;
        return oversize(ctx) ?? next(ctx);
      }
      if (buffered.bytes.length === 0) {
        ctx.body = buffered.bytes;
        return next(ctx);
      }
      const out = rewrite(buffered.bytes, transform);
      if (out === "invalid") {
        return ctx.refuse("bad_request", { message: "The request body is not valid JSON" });
      }
      if (out === "too_deep") {
        return ctx.refuse("bad_request", { message: `The request body ${TOO_DEEP}` });
      }
      ctx.body = out;
      ctx.bodyLength = out.length;
      for (const name of BODY_DIGESTS) ctx.upstreamHeaders.remove(name);
      return next(ctx);
    },
  };
}

export function responseJsonPolicy(transform: JsonTransform, o: JsonBodyOptions): NamedPolicy {
  const tooLarge = `The upstream response is larger than the ${o.maxBytes}-byte transform buffer`;
  /** `passing` is the response as it would go out untouched. */
  const oversize = async (ctx: RequestContext, passing: Response) => {
    if (o.onOversize === "reject") {
      await passing.body?.cancel().catch(() => {});
      return ctx.refuse("upstream_error", { message: tooLarge });
    }
    warnOversize(o, "response");
    return passing;
  };
  return {
    name: "response_json",
    policy: async (ctx, next) => {
      const upstream = ctx.upstreamHeaders;
      // Field rules need the body in the clear: ask the upstream for no content coding (no
      // Accept-Encoding at all would allow any, RFC 9110 §12.5.3), and for all of it: a
      // rewritten part would no longer match its Content-Range.
      upstream.set("accept-encoding", "identity");
      upstream.remove("range");
      upstream.remove("if-range");
      const res = await next(ctx);
      const headers = res.headers;
      if (!isJsonType(headers.get("content-type"))) return res;
      if (ctx.method === "HEAD") return describingRewrite(res, true);
      const body = bodyOf(res);
      if (body === null) return res;
      if (isEncoded(headers.get("content-encoding"))) {
        // Passed on, it would carry the fields the rules remove.
        if (body instanceof ReadableStream) await body.cancel().catch(() => {});
        o.logger.every(`json-encoded:${o.route}`, 10_000, "warn", "upstream encoded JSON anyway", {
          route: o.route,
          content_encoding: headers.get("content-encoding"),
        });
        return ctx.refuse("upstream_error", {
          message: "The upstream encoded a JSON answer this route's rules must read",
        });
      }
      const length = headers.get("content-length");
      const declared = length === null ? null : declaredLength(length);
      if (declared !== null && declared > o.maxBytes) return oversize(ctx, res);
      let buffered;
      try {
        buffered = await bufferUpTo(body, o.maxBytes);
      } catch (e) {
        return upstreamFailure(ctx, e);
      }
      if (buffered.kind === "over") return oversize(ctx, withBody(res, buffered.body));
      const out = rewrite(buffered.bytes, transform);
      if (out === "too_deep") {
        // It parses elsewhere: passed on, it would carry the fields the rules remove.
        return ctx.refuse("upstream_error", { message: `The upstream's JSON answer ${TOO_DEEP}` });
      }
      if (out === "invalid") {
        o.logger.every(`json-invalid:${o.route}`, 10_000, "warn", "upstream JSON did not parse", {
          route: o.route,
        });
        return withBody(res, buffered.bytes);
      }
      return describingRewrite(withBody(res, out), false);
    },
  };
}
