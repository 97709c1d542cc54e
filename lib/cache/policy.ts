/**
 * The response cache of a route, for GET and HEAD. A fresh entry answers at
 * once (`X-Cache: HIT`); otherwise one request per key goes upstream while
 * concurrent requests for the same key wait for its result (coalescing), and
 * a storable answer is kept (`MISS`). When the upstream fails (500, 502, 503,
 * 504, or the gateway could not reach it) and an entry is within
 * `stale_if_error_s`, it stands in (`STALE`). Requests with `Range` bypass it, and
 * so do requests with `Authorization` or `Cookie` whose answer the key cannot tell apart.
 * Other methods go to `invalidate` (lib/cache/invalidation.ts), which every route that may
 * write shares; a GET whose URI is invalidated while it is upstream is answered, not stored.
 * The answer to a request with `Cache-Control: no-store` is not stored (a stored one may serve it).
 *
 * For later stages of the chain (a fallback), a request that has such an entry
 * finds `ctx.locals.get(STALE_RESPONSE)`: a function returning that response.
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler, NamedPolicy, Policy } from "../core/pipeline.ts";
import type { Clock } from "../core/clock.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";
import { upstreamFailure } from "../proxy/proxy.ts";
import { bufferUpTo, withBody } from "../transform/buffer.ts";
import { bodyOf } from "../core/parsed_response.ts";
import { answerValidators, type CachedResponse, type CacheStatus, serveEntry } from "./entry.ts";
import { forbidsStoring, freshness, type FreshnessRules } from "./freshness.ts";
import { type CacheKey, targetUri } from "./key.ts";
import type { PendingFills } from "./fills.ts";
import type { CacheStore } from "./store.ts";

/** `ctx.locals` key of `() => Response`: the stale entry for this request, if one may be served. */
export const STALE_RESPONSE = "cache.stale";

export interface CachePolicyOptions {
  store: CacheStore;
  key: CacheKey;
  rules: FreshnessRules;
  staleIfErrorMs: number;
  maxBodyBytes: number;
  /**
   * The route's auth providers that read their credential from `Authorization`: when another
   * admitted the caller (or none), the field is a credential the gateway did not check.
   */
  authorizationReaders: ReadonlySet<string>;
  /** Whether a request carrying `Cookie` bypasses the cache (the key does not include it). */
  cookieBypasses: boolean;
  clock: Clock;
  /** GETs filling an entry, in this process, for invalidations to outdate. */
  fills: PendingFills;
  /** Requests other than GET and HEAD: invalidation for unsafe methods. */
  invalidate: Policy;
}

/** Upstream answers a stale entry may replace (RFC 5861 §4). */
const STALE_ON_STATUS = new Set([500, 502, 503, 504]);

/** Headers that describe one delivery, not the stored response. */
const NOT_STORED = new Set(["age", "x-cache", "content-length"]);
const EMPTY: Bytes = new Uint8Array(0);

export function cachePolicy(o: CachePolicyOptions): NamedPolicy {
  const inflight = new Map<string, Promise<CachedResponse | null>>();

  const mark = (ctx: RequestContext, res: Response, status: CacheStatus): Response => {
    ctx.cacheStatus = status;
    res.headers.set("x-cache", status);
    return res;
  };

  /** One trip upstream; a failure answered by the stale entry when there is one. */
  const forward = async (
    ctx: RequestContext,
    next: Handler,
    stale: CachedResponse | null,
  ): Promise<{ res: Response; upstream: boolean }> => {
    let res: Response;
    try {
      res = await next(ctx);
    } catch (e) {
      if (stale) return { res: serveEntry(ctx, stale, "STALE", o.clock.now()), upstream: false };
      throw e;
    }
    // A later stage (the resilience fallback) may already have used the stale entry.
    if (ctx.cacheStatus === "STALE") return { res, upstream: false };
    if (stale && STALE_ON_STATUS.has(res.status)) {
      await res.body?.cancel().catch(() => {});
      return { res: serveEntry(ctx, stale, "STALE", o.clock.now()), upstream: false };
    }
    return { res, upstream: true };
  };

  /** The first request for a key: fetch, store if allowed, and tell the waiters. */
  const lead = async (
    ctx: RequestContext,
    next: Handler,
    key: string,
    stale: CachedResponse | null,
  ): Promise<Response> => {
    let settle!: (e: CachedResponse | null) => void;
    inflight.set(key, new Promise((r) => (settle = r)));
    const fill = o.fills.begin(targetUri(ctx), ctx.path, ctx.now);
    // The entry is filled with a full answer; this client's validators are checked against it.
    ctx.upstreamHeaders.remove("if-none-match");
    ctx.upstreamHeaders.remove("if-modified-since");
    try {
      const { res, upstream } = await forward(ctx, next, stale);
      if (!upstream) return res;
      const now = o.clock.now();
      // A response made by the gateway (an error, a fallback) is never stored.
      const fresh = ctx.errorCode === null
        ? freshness(res.headers, res.status, o.rules, now)
        : null;
      if (fresh === null) return mark(ctx, await answerValidators(ctx, res), "MISS");
      let body: Bytes = EMPTY;
      const given = bodyOf(res);
      if (given !== null) {
        let buffered;
        try {
          buffered = await bufferUpTo(given, o.maxBodyBytes);
        } catch (e) {
          // The answer broke off (the upstream closed, a timeout): a failure a stale entry answers.
          if (stale) return serveEntry(ctx, stale, "STALE", o.clock.now());
          return upstreamFailure(ctx, e);
        }
        if (buffered.kind === "over") {
          return mark(ctx, await answerValidators(ctx, withBody(res, buffered.body)), "MISS");
        }
        body = buffered.bytes;
      }
      const headers: [string, string][] = [];
      for (const h of res.headers) if (!NOT_STORED.has(h[0])) headers.push(h);
      // Aged from when the request went out: the answer may have waited that long upstream
      // (RFC 9111 §4.2.3, response_delay), so its Age only grows from the upstream's.
      const sent = ctx.now;
      const entry: CachedResponse = {
        status: res.status,
        headers,
        body,
        date: sent - fresh.ageMs,
        freshUntil: sent + fresh.lifetimeMs,
        staleUntil: sent + fresh.lifetimeMs + (fresh.staleAllowed ? o.staleIfErrorMs : 0),
        path: ctx.path,
      };
      // Written since this request began: the answer may be the old resource. Waiters that
      // came after the write must not get it either; they go upstream themselves.
      if (o.fills.isOutdated(fill) || entry.freshUntil <= now) {
        return serveEntry(ctx, entry, "MISS", now);
      }
      o.store.set(key, entry, fill, now);
      settle(entry);
      return serveEntry(ctx, entry, "MISS", now);
    } finally {
      settle(null);
      inflight.delete(key);
      o.fills.end(fill);
    }
  };

  /** Whether the request's `Authorization` is the credential that identified the caller. */
  const checkedAuthorization = (ctx: RequestContext): boolean =>
    ctx.identity !== null && o.authorizationReaders.has(ctx.identity.provider);

  return {
    name: "cache",
    policy: async (ctx, next) => {
      const method = ctx.method;
      if (method !== "GET" && method !== "HEAD") return o.invalidate(ctx, next);
      // Credentials the gateway did not check, or cookies the key leaves out, may make the
      // answer someone's own; entries are whole answers, and a range of one is not served.
      const h = ctx.headers;
      if (
        h.has("range") || (h.has("authorization") && !checkedAuthorization(ctx)) ||
        (o.cookieBypasses && h.has("cookie"))
      ) {
        return mark(ctx, await next(ctx), "BYPASS");
      }
      const key = o.key(ctx);
      const now = ctx.now;
      const entry = await o.store.get(key, now);
      if (entry !== null && now < entry.freshUntil) return serveEntry(ctx, entry, "HIT");
      const stale = entry !== null && o.staleIfErrorMs > 0 ? entry : null;
      if (stale) ctx.locals.set(STALE_RESPONSE, () => serveEntry(ctx, stale, "STALE"));
      if (method === "GET") {
        const pending = inflight.get(key);
        if (pending === undefined && !forbidsStoring(h.get("cache-control"))) {
          return lead(ctx, next, key, stale);
        }
        const shared = pending === undefined ? null : await pending;
        if (shared !== null) return serveEntry(ctx, shared, "HIT", o.clock.now());
      }
      const { res, upstream } = await forward(ctx, next, stale);
      return upstream ? mark(ctx, res, "MISS") : res;
    },
  };
}
