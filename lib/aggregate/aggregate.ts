/**
 * Aggregation routes (API composition): one request fans out to several
 * upstream GETs in parallel over the gateway's own upstream client, and the
 * JSON answers are merged under their keys. Each call has its own deadline.
 * A failed call either fails the whole request (`on_error: fail`, answered as
 * soon as it fails, the other calls abandoned) or leaves its key out and is
 * described under `errors` (`partial`); when every call fails, the request fails.
 * The merged answer's caching fields are the most restrictive of its parts'.
 */
import type { RouteConfig } from "../config/schema.ts";
import type { RequestContext } from "../core/context.ts";
import type { Handler } from "../core/pipeline.ts";
import { type ErrorCode, GatewayError } from "../core/errors.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { exchange, type UpstreamResponse } from "../proxy/http1/client.ts";
import { UpstreamError } from "../proxy/http1/errors.ts";
import { buildHeaderBlock, type ForwardOptions } from "../proxy/forward.ts";
import type { Upstream, UpstreamTarget } from "../proxy/upstream.ts";
import { NO_RESPONSE } from "../resilience/guards.ts";
import { bufferUpTo } from "../transform/buffer.ts";
import { JsonDepthError, MAX_JSON_DEPTH, parseExactJson } from "../transform/exact_json.ts";
import { type Template, templateVariables } from "../transform/template.ts";
import type { AggregateConfig } from "./schema.ts";
import { MergedCaching } from "./caching.ts";
import { compileCallPath, hasDotSegment } from "./call_path.ts";
import { monoNow } from "../core/clock.ts";

interface Call {
  key: string;
  upstream: Upstream;
  path: Template;
  timeoutMs: number;
  maxBytes: number;
}

/** How the request head is written for every call (the proxy's conventions). */
interface HeadOptions {
  via: string;
  requestIdHeader: string;
}

type Part =
  | { ok: true; key: string; value: unknown; headers: [string, string][] }
  | { ok: false; key: string; code: ErrorCode; message: string; status?: number };

/** Request headers that would make a part's answer something other than plain JSON. */
const NOT_FOR_PARTS = [
  "accept-encoding",
  "range",
  "if-range",
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "content-type",
];
const NOT_FOR_PARTS_SET: ReadonlySet<string> = new Set(NOT_FOR_PARTS);

const decoder = new TextDecoder("utf-8", { fatal: true });

export function createAggregate(route: RouteConfig, index: number, b: BuildContext): Handler {
  const cfg = route.aggregate as AggregateConfig;
  const s = b.config.server;
  const params = pathParams(route);
  const calls: Call[] = cfg.calls.map((c, j) => {
    for (const v of templateVariables(c.path)) {
      if (v.startsWith("param.") && !params.has(v.slice(6))) {
        b.fail(
          ["routes", index, "aggregate", "calls", j, "path"],
          `\${${v}} is not a parameter of the route's match path` +
            (params.size ? ` (it has ${[...params].join(", ")})` : " (it has none)"),
        );
      }
    }
    return {
      key: c.key,
      upstream: b.upstreams.get(c.upstream)!,
      path: compileCallPath(c.path),
      timeoutMs: c.timeout_ms,
      maxBytes: c.max_body_bytes,
    };
  });
  const head: HeadOptions = {
    via: s.via,
    requestIdHeader: s.request_id_header.toLowerCase(),
  };
  const failFast = cfg.on_error === "fail";
  const upstreamNames = [...new Set(cfg.calls.map((c) => c.upstream))].join(",");

  return async (ctx) => {
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      return ctx.refuse("method_not_allowed", { headers: { allow: "GET, HEAD" } });
    }
    for (const h of NOT_FOR_PARTS) ctx.upstreamHeaders.remove(h);
    const paths = calls.map((c) => c.path(ctx));
    const escaping = paths.findIndex(hasDotSegment);
    if (escaping >= 0) return refuseDotSegment(ctx, calls[escaping]!.key);
    ctx.upstreamName = upstreamNames;
    const started = monoNow();
    const abandon = new AbortController();
    const signal = AbortSignal.any([ctx.signal, abandon.signal]);
    const pending = calls.map((c, i) => callPart(ctx, c, paths[i]!, head, signal));
    let parts: Part[];
    if (failFast) {
      try {
        parts = await Promise.all(
          pending.map((p) => p.then((r) => (r.ok ? r : Promise.reject(r)))),
        );
      } catch (failed) {
        abandon.abort();
        const f = failed as Part & { ok: false };
        ctx.upstreamMs = monoNow() - started;
        return ctx.refuse(f.code, {
          message: `The aggregated call "${f.key}" failed: ${f.message}`,
          extra: { part: f.key },
        });
      }
    } else parts = await Promise.all(pending);
    ctx.upstreamMs = monoNow() - started;
    return merge(ctx, parts);
  };
}

function refuseDotSegment(ctx: RequestContext, key: string): Response {
  return ctx.refuse("bad_request", {
    message: `A value substituted into the path of the aggregated call "${key}" ` +
      "makes it a . or .. segment",
  });
}

function merge(ctx: RequestContext, parts: Part[]): Response {
  const out: Record<string, unknown> = {};
  const errors: Record<string, unknown> = {};
  const caching = new MergedCaching(NOT_FOR_PARTS_SET);
  let failures = 0;
  for (const p of parts) {
    if (p.ok) {
      out[p.key] = p.value;
      caching.add(p.headers, ctx.now);
    } else {
      failures++;
      caching.addFailure();
      errors[p.key] = {
        code: p.code,
        message: p.message,
        ...(p.status ? { status: p.status } : {}),
      };
    }
  }
  if (failures === parts.length) {
    const first = parts[0] as Part & { ok: false };
    return ctx.refuse(first.code, {
      message: "Every aggregated call failed",
      extra: { errors },
    });
  }
  if (failures) out.errors = errors;
  const headers: [string, string][] = [["content-type", "application/json"], ...caching.fields()];
  return new Response(ctx.method === "HEAD" ? null : JSON.stringify(out), { status: 200, headers });
}

/** One call under its own deadline; never throws. */
async function callPart(
  ctx: RequestContext,
  c: Call,
  path: string,
  head: HeadOptions,
  parent: AbortSignal,
): Promise<Part> {
  const deadline = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<Part>((resolve) => {
    timer = setTimeout(() => {
      deadline.abort();
      resolve({
        ok: false,
        key: c.key,
        code: "upstream_timeout",
        message: `No complete answer within ${c.timeoutMs} ms`,
      });
    }, c.timeoutMs);
  });
  try {
    // The exchange may outlive a deadline that fired while it was connecting; its result is dropped.
    const signal = AbortSignal.any([parent, deadline.signal]);
    return await Promise.race([fetchPart({ ctx, c, path, head, signal, parent }), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** One call as it goes out. */
interface OutgoingCall {
  ctx: RequestContext;
  c: Call;
  path: string;
  head: HeadOptions;
  /** Aborted by the call's deadline or by `parent`. */
  signal: AbortSignal;
  /** Aborted when the call is no longer wanted (the client left, another call failed first). */
  parent: AbortSignal;
}

type PartFailure = (code: ErrorCode, message: string, status?: number) => Part;

async function fetchPart(o: OutgoingCall): Promise<Part> {
  const { ctx, c, signal } = o;
  const fail: PartFailure = (code, message, status) => ({
    ok: false,
    key: c.key,
    code,
    message,
    ...(status ? { status } : {}),
  });
  const u = c.upstream;
  // The upstream's bulkhead bounds its calls as it bounds requests: a slot until the answer's head.
  const bulkhead = u.bulkhead;
  if (bulkhead !== null && !bulkhead.tryAcquire()) {
    if (!u.anyAvailable(ctx.now)) return fail("no_healthy_upstream", "No healthy upstream target");
    if (!(await bulkhead.wait(signal))) {
      return fail("upstream_overloaded", "The upstream has too many requests in flight");
    }
  }
  let slot = bulkhead;
  const freeSlot = () => {
    slot?.release();
    slot = null;
  };
  try {
    return await callTarget(o, fail, freeSlot);
  } finally {
    freeSlot();
  }
}

/** The call, its bulkhead slot taken; `answered` gives the slot back once the head (or a failure) is in. */
async function callTarget(o: OutgoingCall, fail: PartFailure, answered: () => void): Promise<Part> {
  const { ctx, c, path, head, signal, parent } = o;
  const u = c.upstream;
  // Circuits, ejections and health are timed on the injected clock, as the proxy picks.
  const target = u.balancer.pick(u.hashKey ? u.hashKey(ctx) : null, ctx.now);
  if (target === null) return fail("no_healthy_upstream", "No healthy upstream target");
  // A call is an exchange like a proxied request's: it takes a half-open probe slot, and its
  // outcome counts for the target's breaker and outlier record.
  const guards = target.guards;
  const probe = guards === null ? 0 : guards.admit(u.clock.now());
  ctx.attempts++;
  try {
    let res: UpstreamResponse;
    try {
      res = await exchange(target.pool, {
        method: "GET",
        path,
        headerBlock: buildHeaderBlock(ctx, forwardOptions(ctx, u, target, head)),
        body: null,
        bodyLength: null,
      }, {
        connectTimeoutMs: Math.min(u.timeouts.connectMs, c.timeoutMs),
        firstByteTimeoutMs: c.timeoutMs,
        requestTimeoutMs: c.timeoutMs,
        signal,
      });
    } catch (e) {
      answered();
      // An abort by the call's own deadline is its timeout; by `parent`, it tells nothing.
      const unanswered = e instanceof UpstreamError && !(e.kind === "aborted" && parent.aborted);
      if (unanswered) guards?.settle(u.clock.now(), NO_RESPONSE, probe);
      else guards?.abandon(probe);
      throw e;
    }
    answered();
    guards?.settle(u.clock.now(), res.status, probe);
    if (res.status < 200 || res.status > 299) {
      if (res.body instanceof ReadableStream) await res.body.cancel().catch(() => {});
      return fail("upstream_error", `The upstream answered ${res.status}`, res.status);
    }
    const body = await bufferUpTo(res.body, c.maxBytes);
    if (body.kind === "over") {
      if (body.body instanceof ReadableStream) await body.body.cancel().catch(() => {});
      return fail("upstream_error", `The answer is larger than ${c.maxBytes} bytes`);
    }
    try {
      const value = parseExactJson(decoder.decode(body.bytes));
      return { ok: true, key: c.key, value, headers: res.headers };
    } catch (e) {
      return fail(
        "upstream_error",
        e instanceof JsonDepthError
          ? `The answer nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`
          : "The answer is not JSON",
      );
    }
  } catch (e) {
    if (e instanceof UpstreamError) {
      const code = e.kind === "timeout" || e.kind === "connect_timeout"
        ? "upstream_timeout"
        : e.kind === "protocol"
        ? "upstream_error"
        : "bad_gateway";
      return fail(code, e.message);
    }
    if (e instanceof GatewayError) return fail(e.code, e.message);
    return fail("bad_gateway", (e as Error)?.message ?? String(e));
  }
}

function forwardOptions(
  ctx: RequestContext,
  u: Upstream,
  target: UpstreamTarget,
  head: HeadOptions,
): ForwardOptions {
  return {
    ...head,
    authority: target.pool.target.authority,
    preserveHost: u.config.preserve_host,
    trustedPeer: ctx.peerTrusted,
    extraBlock: u.extraBlock,
    extraNames: u.extraNames,
  };
}

/** Names of the parameters the route's match path captures. */
function pathParams(route: RouteConfig): Set<string> {
  const m = route.match;
  const names = new Set<string>();
  const pattern = m.path ?? m.path_exact;
  if (pattern) {
    for (const x of pattern.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
      names.add(x[1]!);
    }
  }
  if (m.path_regex) {
    for (const x of m.path_regex.matchAll(/\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g)) names.add(x[1]!);
  }
  return names;
}
