/**
 * Rate limits and quotas of a route: its own `rate_limit` (or `defaults.rate_limit`
 * when it has none), its `quota`, and on routes with `auth` the limits and quota
 * of the caller's plan. All of them are decided together; a request passes only
 * if every enforcing limit admits it, and only then does it consume from each.
 *
 * Counters are namespaced by a stable limit id, so limits of the defaults and of
 * plans are shared by every route they apply to, and state survives reloads for
 * limits that still exist (memory state lives in `RuntimeDeps`, Redis outlives us).
 */
import type { RouteConfig } from "../config/schema.ts";
import type { KeyPath } from "../config/issues.ts";
import type { Stage } from "../plan/chain.ts";
import type { BuildContext } from "../plan/build_context.ts";
import type { LimiterStore } from "../store/limiter_store.ts";
import { RedisLimiterStore } from "../store/redis_limiter.ts";
import { whenReady } from "../store/redis.ts";
import { compileQuota, compileRateLimit, type Limit, type LimitScope } from "./limit.ts";
import type { QuotaConfig, RateLimitConfig } from "./schema.ts";
import { rateLimitPolicy } from "./policy.ts";

const ROUTE_KEY = ["ip"];
const PLAN_KEY = ["consumer"];

export const rateLimitStage: Stage = {
  name: "ratelimit",
  async build(route, index, b) {
    const own = route.rate_limit
      ? compileAll(route.rate_limit, route.quota, {
        name: `route:${route.name}`,
        defaultKey: ROUTE_KEY,
      })
      : [
        ...await defaultLimits(b),
        ...compileAll([], route.quota, { name: `route:${route.name}`, defaultKey: ROUTE_KEY }),
      ];
    const authenticated = (route.auth?.length ?? 0) > 0;
    if (!authenticated) checkConsumerKeys(route, index, b);
    const plans = authenticated ? await planLimits(b) : new Map<string, Limit[]>();
    if (own.length === 0 && plans.size === 0) return [];

    const byPlan = plans.size === 0
      ? null
      : new Map([...plans].map(([name, limits]) => [name, [...own, ...limits]]));
    for (const set of [own, ...byPlan?.values() ?? []]) checkDistinctIds(set, route, index, b);

    const store = await b.shared("ratelimit:store", () => limiterStore(b));
    const onError = b.config.store.redis?.on_error ?? "allow";
    const consequence = onError === "allow"
      ? "rate limits not enforced: the store is unavailable"
      : "requests refused: the rate-limit store is unavailable";
    const logger = b.deps.logger;
    return [{
      name: "ratelimit",
      policy: rateLimitPolicy({
        base: own,
        byPlan,
        store,
        clock: b.deps.clock,
        onError,
        onStoreError: (ctx) =>
          logger.every("ratelimit-store", 10_000, "warn", consequence, {
            route: ctx.route?.name ?? null,
          }),
      }),
    }];
  },
};

function compileAll(
  limits: readonly RateLimitConfig[],
  quota: QuotaConfig | undefined,
  scope: LimitScope,
): Limit[] {
  const out = limits.map((c, i) => compileRateLimit(c, i, scope));
  if (quota) out.push(compileQuota(quota, scope));
  return out;
}

/** `defaults.rate_limit`: one set of counters for every route that uses them. */
function defaultLimits(b: BuildContext): Promise<Limit[]> {
  return b.shared(
    "ratelimit:defaults",
    () =>
      compileAll(b.config.defaults?.rate_limit ?? [], undefined, {
        name: "defaults",
        defaultKey: ROUTE_KEY,
      }),
  );
}

/** Limits and quota of each plan that has any, shared by every route. */
function planLimits(b: BuildContext): Promise<Map<string, Limit[]>> {
  return b.shared("ratelimit:plans", () => {
    const out = new Map<string, Limit[]>();
    for (const [name, plan] of Object.entries(b.config.plans)) {
      const limits = compileAll(plan.rate_limit ?? [], plan.quota, {
        name: `plan:${name}`,
        defaultKey: PLAN_KEY,
      });
      if (limits.length > 0) out.set(name, limits);
    }
    return out;
  });
}

async function limiterStore(b: BuildContext): Promise<LimiterStore> {
  const s = b.config.store;
  if (s.kind === "redis") {
    const redis = s.redis!;
    const client = b.deps.redis.get(redis);
    if (!await whenReady(client, redis.connect_timeout_ms)) {
      b.deps.logger.warn("redis is not reachable yet; rate limits follow on_error until it is", {
        on_error: redis.on_error,
      });
    }
    return new RedisLimiterStore(client, redis, b.deps.redis);
  }
  // The store outlives plans and holds every counter: a plan that is built but never served
  // (a reload that fails later on) must not trim them to its caps.
  b.onActivate(() =>
    b.deps.localLimiter.configure({
      maxKeys: s.memory.max_keys,
      maxLogEntries: s.memory.log_max_bytes / 8,
    })
  );
  return b.deps.localLimiter;
}

/** Keyed by consumer on a route nobody authenticates on: a mistake, not a choice. */
function checkConsumerKeys(route: RouteConfig, index: number, b: BuildContext): void {
  const check = (key: readonly string[] | undefined, path: KeyPath) => {
    if (key?.includes("consumer")) {
      b.fail(
        path,
        "key consumer needs auth on the route: without it every caller is anonymous " +
          "(use ip or header:NAME, or add auth)",
      );
    }
  };
  route.rate_limit?.forEach((l, i) => check(l.key, ["routes", index, "rate_limit", i, "key"]));
  if (route.quota) check(route.quota.key, ["routes", index, "quota", "key"]);
}

/** Two limits of one request on one key would read the same counter twice. */
function checkDistinctIds(
  limits: readonly Limit[],
  route: RouteConfig,
  index: number,
  b: BuildContext,
): void {
  const seen = new Set<string>();
  for (const l of limits) {
    if (seen.has(l.id)) {
      b.fail(
        ["routes", index],
        `two limits that apply to route "${route.name}" share the id "${l.id}"`,
      );
    }
    seen.add(l.id);
  }
}
