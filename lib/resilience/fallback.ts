/**
 * Graceful degradation when no upstream answer can be had: first a stale cached
 * response (when the route's cache offers one), then the route's static
 * `fallback`, and only then the gateway's error in the common shape.
 */
import type { RequestContext } from "../core/context.ts";
import type { ErrorCode, ErrorDetails } from "../core/errors.ts";
import type { FallbackConfig } from "./schema.ts";
import { withBodySize } from "../observe/body_size.ts";
import { STALE_RESPONSE } from "../cache/policy.ts";

/**
 * Hook for stale-if-error: the cache stage puts a `StaleResponse` under
 * `STALE_RESPONSE` (lib/cache/policy.ts) in `ctx.locals` when it holds an expired entry that may still be served
 * on error. The proxy calls it when the upstream fails (no answer, or 500, 502,
 * 503, 504 as RFC 5861 says); it returns the stale response (and marks the
 * request `cacheStatus = "STALE"`) or null when the entry is too old.
 */
export type StaleResponse = () => Response | null;

/** Statuses an upstream answer may be replaced by a stale one for (RFC 5861, section 4). */
const STALE_ON_STATUS = new Set([500, 502, 503, 504]);

export type Fallback = () => Response;

/** Compiles a route's `fallback` once: its body is encoded at load, not per request. */
export function compileFallback(c: FallbackConfig): Fallback {
  const headers: [string, string][] = Object.entries(c.headers).map(([k, v]) => [
    k.toLowerCase(),
    v,
  ]);
  let body: Uint8Array<ArrayBuffer> | null = null;
  if (c.body !== undefined) {
    const isText = typeof c.body === "string";
    body = new TextEncoder().encode(isText ? c.body as string : JSON.stringify(c.body));
    if (!headers.some(([k]) => k === "content-type")) {
      headers.push(["content-type", isText ? "text/plain; charset=utf-8" : "application/json"]);
    }
  }
  const status = c.status;
  if (body === null) return () => new Response(null, { status, headers });
  const length = body.length;
  return () => withBodySize(new Response(body, { status, headers }), length);
}

/**
 * The answer when the upstream could not be used: stale, fallback, or the error.
 * `ctx.errorCode` records the real cause in every case, for logs and metrics
 * (and so that a cache never stores a fallback).
 */
export function degrade(
  ctx: RequestContext,
  fallback: Fallback | null,
  code: ErrorCode,
  details?: ErrorDetails,
): Response {
  const stale = staleResponse(ctx);
  if (stale !== null) {
    ctx.errorCode = code;
    return stale;
  }
  if (fallback !== null) {
    ctx.errorCode = code;
    return fallback();
  }
  return ctx.refuse(code, details);
}

/** A stale cached response to serve instead of an upstream's 5xx answer, if one may be. */
export function staleInsteadOf(ctx: RequestContext, status: number): Response | null {
  return STALE_ON_STATUS.has(status) ? staleResponse(ctx) : null;
}

function staleResponse(ctx: RequestContext): Response | null {
  const stale = ctx.locals.get(STALE_RESPONSE) as StaleResponse | undefined;
  return stale === undefined ? null : stale();
}
