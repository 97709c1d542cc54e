/**
 * The response cache stage: a route with `cache` gets one cache policy, on the
 * store it names (default `store.kind`). Entries are namespaced by route name
 * and a fingerprint of what shapes the route's responses, so a reload keeps
 * them unless the upstream, rewrite or response transforms change. When any
 * route caches, every route that accepts an unsafe method invalidates (a write
 * need not go through the route that stored the read); when none does, no
 * route gets anything.
 */
import type { RouteConfig } from "../config/schema.ts";
import type { AuthProviderConfig } from "../auth/schema.ts";
import type { Policy } from "../core/pipeline.ts";
import type { Stage } from "../plan/chain.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { cachePolicy } from "./policy.ts";
import { acceptsUnsafe, invalidationPolicy } from "./invalidation.ts";
import { compileCacheKey, fingerprint } from "./key.ts";
import type { CacheStore } from "./store.ts";

const passOn: Policy = (ctx, next) => next(ctx);

export const cacheStage: Stage = {
  name: "cache",
  async build(route, index, b) {
    const invalidate = acceptsUnsafe(route) ? await invalidationFor(b) : null;
    const c = route.cache;
    if (!c) return invalidate === null ? [] : [{ name: "cache_invalidation", policy: invalidate }];
    const store = await storeFor(route, index, b);
    const vary = c.vary.map((h) => h.toLowerCase());
    const shape = JSON.stringify([
      route.upstream,
      route.split,
      route.strip_prefix,
      route.rewrite,
      route.transform?.response,
      route.aggregate,
    ]);
    const authenticated = (route.auth?.length ?? 0) > 0;
    const authorizationReaders = new Set(
      (route.auth ?? []).filter((name) => readsAuthorization(b.config.auth[name])),
    );
    return [cachePolicy({
      store,
      key: compileCacheKey({
        namespace: `${route.name}~${fingerprint(shape)}`,
        normalizeQuery: c.normalize_query,
        vary,
        perCaller: authenticated,
      }),
      rules: { ttlMs: c.ttl_s * 1000, statuses: new Set(c.statuses), vary: new Set(vary) },
      staleIfErrorMs: c.stale_if_error_s * 1000,
      maxBodyBytes: c.max_body_bytes,
      authorizationReaders,
      cookieBypasses: !c.ignore_cookies && !vary.includes("cookie"),
      clock: b.deps.clock,
      fills: b.deps.caches.fills,
      invalidate: invalidate ?? passOn,
    })];
  },
};

/** Whether an auth provider takes its credential from `Authorization` (mTLS takes none). */
function readsAuthorization(p: AuthProviderConfig | undefined): boolean {
  return p !== undefined && p.kind !== "mtls" && p.header.toLowerCase() === "authorization";
}

/** The plan's invalidation policy over every store its routes cache in; null when none caches. */
function invalidationFor(b: BuildContext): Promise<Policy | null> {
  return b.shared("cache.invalidation", async () => {
    const stores = new Set<CacheStore>();
    for (const [index, route] of b.config.routes.entries()) {
      if (route.cache) stores.add(await storeFor(route, index, b));
    }
    if (stores.size === 0) return null;
    return invalidationPolicy({
      stores: [...stores],
      fills: b.deps.caches.fills,
      clock: b.deps.clock,
      mergeSlashes: b.config.security.merge_slashes,
      allowPathParameters: b.config.security.allow_path_parameters,
    });
  });
}

async function storeFor(route: RouteConfig, index: number, b: BuildContext): Promise<CacheStore> {
  const caches = b.deps.caches;
  if ((route.cache!.store ?? b.config.store.kind) === "memory") {
    return await b.shared("cache.memory", () => {
      // The store outlives plans: a plan built but never served (a reload that fails later on)
      // must not evict entries to its budget.
      const maxBytes = b.config.store.memory.cache_max_bytes;
      b.onActivate(() => caches.memory.resize(maxBytes));
      return caches.memory;
    });
  }
  const redis = b.config.store.redis;
  if (!redis) {
    b.fail(
      ["routes", index, "cache", "store"],
      "a Redis cache needs a store.redis section (url, prefix)",
    );
  }
  return await b.shared("cache.redis", () => {
    const cache = caches.acquireRedis(b.deps.redis, redis);
    b.onDispose(() => caches.releaseRedis(cache));
    return cache;
  });
}
