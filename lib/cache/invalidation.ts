/**
 * Invalidation across routes (RFC 9111 §4.4): an unsafe request (POST, PUT,
 * PATCH, DELETE, …) that the upstream answers 2xx or 3xx drops what every cache
 * of the plan stored for its target URI (`targetUri`: host, path and query,
 * whatever route stored it), and outdates the GETs filling it in this process.
 * Reads and writes are often split into routes by method; the write need not
 * pass through a cached route.
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler, Policy } from "../core/pipeline.ts";
import type { Clock } from "../core/clock.ts";
import type { RouteConfig } from "../config/schema.ts";
import type { PendingFills } from "./fills.ts";
import { targetUri } from "./key.ts";
import type { CacheStore } from "./store.ts";

/** Methods that change nothing (RFC 9110 §9.2.1); any other invalidates. */
const SAFE = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

export interface InvalidationOptions {
  /** Every cache store some route of the plan uses. */
  stores: readonly CacheStore[];
  fills: PendingFills;
  clock: Clock;
}

/** Passes safe requests on untouched; a successful unsafe one invalidates its URI. */
export function invalidationPolicy(o: InvalidationOptions): Policy {
  const { stores, fills, clock } = o;
  const invalidating = async (ctx: RequestContext, next: Handler): Promise<Response> => {
    const res = await next(ctx);
    // A refused change changes nothing; an answer the gateway made says nothing of the upstream.
    if (ctx.errorCode !== null || res.status >= 400) return res;
    const uri = targetUri(ctx);
    fills.outdate(uri);
    const now = clock.now();
    await Promise.all(stores.map((s) => s.invalidate(uri, now)));
    return res;
  };
  return (ctx, next) => SAFE.has(ctx.method) ? next(ctx) : invalidating(ctx, next);
}

/** Whether a route accepts a method that invalidates (a route without `methods` accepts any). */
export function acceptsUnsafe(route: RouteConfig): boolean {
  const methods = route.match.methods;
  return methods === undefined || methods.some((m) => !SAFE.has(m));
}
