/**
 * Request body size limit of a route (`limits.max_body_bytes`, else the global
 * `security.max_body_bytes`). A declared Content-Length over the limit is
 * refused with 413 before anything is sent upstream; a body of unknown length
 * is counted as it streams and cut with 413 once it passes the limit (the
 * upstream sees the exchange aborted, never a truncated body that looks whole).
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler, NamedPolicy } from "../core/pipeline.ts";
import { GatewayError } from "../core/errors.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";
import { relayBytes } from "../core/byte_relay.ts";

export function bodyLimitPolicy(maxBytes: number): NamedPolicy {
  const message = `The request body is larger than ${maxBytes} bytes`;
  // The rest of the body is never read: the connection cannot carry another request.
  const refusal = { message, headers: { connection: "close" } };
  const streamed = async (ctx: RequestContext, next: Handler, body: ReadableStream<Bytes>) => {
    ctx.body = limitStream(body, maxBytes, message);
    const res = await next(ctx);
    if (ctx.errorCode === "payload_too_large") res.headers.set("connection", "close");
    return res;
  };
  return {
    name: "body_limit",
    // Not async: the common request without a body costs one check, no extra promise.
    policy: (ctx, next) => {
      const body = ctx.body;
      if (body === null) return next(ctx);
      if (ctx.bodyLength !== null) {
        // The runtime enforces a declared length, so checking it is enough.
        if (ctx.bodyLength > maxBytes) return ctx.refuse("payload_too_large", refusal);
        return next(ctx);
      }
      if (body instanceof Uint8Array) {
        if (body.length > maxBytes) return ctx.refuse("payload_too_large", refusal);
        return next(ctx);
      }
      return streamed(ctx, next, body);
    },
  };
}

/** Passes the stream through until it exceeds `maxBytes`, then fails it with `payload_too_large`. */
export function limitStream(
  body: ReadableStream<Bytes>,
  maxBytes: number,
  message: string,
): ReadableStream<Bytes> {
  let seen = 0;
  return relayBytes(body, {
    chunk(n) {
      seen += n;
      if (seen > maxBytes) throw new GatewayError("payload_too_large", { message });
    },
  });
}
