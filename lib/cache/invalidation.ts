/**
 * Invalidation across routes (RFC 9111 §4.4): an unsafe request (POST, PUT,
 * PATCH, DELETE, …) that the upstream answers 2xx or 3xx drops what every cache
 * of the plan stored for its target URI (`targetUri`: host, path and query,
 * whatever route stored it), and for the URIs its answer's `Location` and
 * `Content-Location` name on the same origin, and outdates the GETs filling
 * them in this process. Reads and writes are often split into routes by
 * method; the write need not pass through a cached route.
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler, Policy } from "../core/pipeline.ts";
import type { Clock } from "../core/clock.ts";
import type { RouteConfig } from "../config/schema.ts";
import { responseFields } from "../core/parsed_response.ts";
import { normalisePath } from "../security/path.ts";
import type { PendingFills } from "./fills.ts";
import { targetUri, uriOf } from "./key.ts";
import type { CacheStore } from "./store.ts";

/** Methods that change nothing (RFC 9110 §9.2.1); any other invalidates. */
const SAFE = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** Answer fields naming a resource the write created or changed. */
const NAMING_FIELDS = ["location", "content-location"];

export interface InvalidationOptions {
  /** Every cache store some route of the plan uses. */
  stores: readonly CacheStore[];
  fills: PendingFills;
  clock: Clock;
  /** How the listener normalises paths (`security`), so a named URI is the one a GET of it keys. */
  mergeSlashes: boolean;
  allowPathParameters: boolean;
}

/** Passes safe requests on untouched; a successful unsafe one invalidates its URIs. */
export function invalidationPolicy(o: InvalidationOptions): Policy {
  const { stores, fills, clock } = o;
  const invalidating = async (ctx: RequestContext, next: Handler): Promise<Response> => {
    const res = await next(ctx);
    // A refused change changes nothing; an answer the gateway made says nothing of the upstream.
    if (ctx.errorCode !== null || res.status >= 400) return res;
    const uris = [targetUri(ctx)];
    const fields = responseFields(res);
    for (const field of NAMING_FIELDS) {
      const value = fields.get(field);
      const uri = value === null ? null : namedUri(ctx, value, o);
      if (uri !== null && !uris.includes(uri)) uris.push(uri);
    }
    const now = clock.now();
    for (const uri of uris) fills.outdate(uri, now);
    await Promise.all(uris.flatMap((uri) => stores.map((s) => s.invalidate(uri, now))));
    return res;
  };
  return (ctx, next) => SAFE.has(ctx.method) ? next(ctx) : invalidating(ctx, next);
}

/**
 * The target URI a `Location` or `Content-Location` value names, resolved
 * against the request's; null for another origin, which the RFC forbids
 * invalidating (an upstream behind one host would empty another's entries),
 * and for a value that is no URI or whose path the listener would refuse.
 * The request's origin is the one the upstream was told, which it builds the
 * URIs it names from: behind a trusted proxy that ends TLS, https.
 */
function namedUri(
  ctx: RequestContext,
  value: string,
  o: Pick<InvalidationOptions, "mergeSlashes" | "allowPathParameters">,
): string | null {
  let base: URL;
  let named: URL;
  try {
    base = new URL(toldOrigin(ctx));
    named = new URL(value, new URL(ctx.path + ctx.query, base));
  } catch {
    return null;
  }
  if (named.origin !== base.origin) return null;
  const path = normalisePath(named.pathname, o.mergeSlashes, o.allowPathParameters);
  return path.ok ? uriOf(ctx.host, path.path, named.search) : null;
}

/** Scheme and authority as `buildHeaderBlock` tells them the upstream. */
function toldOrigin(ctx: RequestContext): string {
  let scheme = ctx.listener.tls ? "https" : "http";
  let authority = ctx.incoming.authority;
  if (ctx.peerTrusted) {
    const proto = firstValue(ctx.headers.get("x-forwarded-proto"))?.toLowerCase();
    if (proto === "http" || proto === "https") scheme = proto;
    authority = firstValue(ctx.headers.get("x-forwarded-host")) || authority;
  }
  return `${scheme}://${authority}`;
}

/** The first of a list of proxies' values: what the proxy in front of the others saw. */
function firstValue(value: string | null): string | undefined {
  return value?.split(",", 1)[0]?.trim();
}

/** Whether a route accepts a method that invalidates (a route without `methods` accepts any). */
export function acceptsUnsafe(route: RouteConfig): boolean {
  const methods = route.match.methods;
  return methods === undefined || methods.some((m) => !SAFE.has(m));
}
