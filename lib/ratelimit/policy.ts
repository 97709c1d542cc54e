/**
 * The per-request rate-limit policy: read the request's keys, let the store
 * decide every applicable limit at once, then refuse (429 with `Retry-After`
 * and `RateLimit-*`), hold the request (shaping), or pass it on and report the
 * most restrictive limit on the response.
 */
import type { RequestContext } from "../core/context.ts";
import { responseFields } from "../core/parsed_response.ts";
import type { Clock } from "../core/clock.ts";
import type { Handler, Policy } from "../core/pipeline.ts";
import type { LimiterStore } from "../store/limiter_store.ts";
import type { Verdict } from "./algorithms/index.ts";
import type { Limit } from "./limit.ts";
import { setLimitHeaders, setRefusalHeaders } from "./headers.ts";
import { pause } from "../resilience/attempts.ts";
import { MAX_TIMER_MS } from "../config/common.ts";

export interface RateLimitPolicyOptions {
  /** Limits of the route (its own or the defaults) and its quota. */
  base: readonly Limit[];
  /** `base` plus the plan's limits, by plan name; null when no plan can apply to the route. */
  byPlan: ReadonlyMap<string, readonly Limit[]> | null;
  store: LimiterStore;
  /** The clock `ctx.now` was read from: a shaped request is held until `ctx.now + delay` on it. */
  clock: Clock;
  /** When the store cannot answer: let requests through, or refuse them with 503. */
  onError: "allow" | "deny";
  /** Called when the store failed and the request was let through or refused. */
  onStoreError?: (ctx: RequestContext, e: unknown) => void;
}

export function rateLimitPolicy(o: RateLimitPolicyOptions): Policy {
  const { base, byPlan, store, clock } = o;
  const unavailable = (ctx: RequestContext, next: Handler, e: unknown) => {
    o.onStoreError?.(ctx, e);
    if (o.onError === "allow") {
      ctx.rateLimit = "allowed";
      return next(ctx);
    }
    return ctx.refuse("store_unavailable", { headers: { "retry-after": "1" } });
  };
  return (ctx, next) => {
    let limits = base;
    if (byPlan !== null) {
      const plan = ctx.consumer?.plan;
      if (plan != null) limits = byPlan.get(plan) ?? base;
    }
    const n = limits.length;
    if (n === 0) return next(ctx);
    const keys = new Array<string>(n);
    for (let i = 0; i < n; i++) keys[i] = limits[i]!.keyOf(ctx);
    let verdicts: Verdict[] | Promise<Verdict[]>;
    try {
      verdicts = store.decide(limits, keys, ctx.now);
    } catch (e) {
      return unavailable(ctx, next, e);
    }
    if (verdicts instanceof Promise) {
      return verdicts.then(
        (v) => enforce(ctx, next, limits, v, clock),
        (e) => unavailable(ctx, next, e),
      );
    }
    return enforce(ctx, next, limits, verdicts, clock);
  };
}

function enforce(
  ctx: RequestContext,
  next: Handler,
  limits: readonly Limit[],
  verdicts: readonly Verdict[],
  clock: Clock,
): Response | Promise<Response> {
  let refused = -1;
  let reported = -1;
  let shadowRefused = false;
  let delayMs = 0;
  for (let i = 0; i < limits.length; i++) {
    const v = verdicts[i]!;
    const limit = limits[i]!;
    if (!v.allowed) {
      if (limit.shadow) shadowRefused = true;
      // Of several refusals, the one that lasts longest says when to come back.
      else if (refused < 0 || v.retryAfterMs > verdicts[refused]!.retryAfterMs) refused = i;
      continue;
    }
    // A shadow limit only observes: its queue slot is counted, the request is not held.
    if (limit.shadow) continue;
    if (v.delayMs > delayMs) delayMs = v.delayMs;
    if (limit.headers !== "none" && (reported < 0 || tighter(v, verdicts[reported]!))) reported = i;
  }
  if (refused >= 0) {
    ctx.rateLimit = "limited";
    return refuse(ctx, limits[refused]!, verdicts[refused]!);
  }
  ctx.rateLimit = shadowRefused ? "shadow_limited" : "allowed";
  // The slot was computed for `ctx.now`; time spent since (a Redis round trip) counts.
  const holdMs = delayMs > 0 ? ctx.now + delayMs - clock.now() : 0;
  const res = holdMs > 0 ? holdThenForward(ctx, next, holdMs) : next(ctx);
  if (reported < 0) return res;
  const limit = limits[reported]!;
  const verdict = verdicts[reported]!;
  return res instanceof Promise
    ? res.then((r) => withLimitHeaders(r, limit, verdict, ctx.now))
    : withLimitHeaders(res, limit, verdict, ctx.now);
}

/**
 * Fewer units left, or as few for longer: the limit a client has to plan by.
 * A tie went to the first listed, so a bucket at 0 that refills in a second hid
 * an hourly window at 0.
 */
function tighter(a: Verdict, b: Verdict): boolean {
  return a.remaining < b.remaining || (a.remaining === b.remaining && a.resetMs > b.resetMs);
}

function refuse(ctx: RequestContext, limit: Limit, v: Verdict): Response {
  const res = ctx.refuse(limit.refusal, {
    message: limit.refusal === "quota_exceeded"
      ? `The quota of ${limit.description} is exhausted`
      : `Too many requests: the limit is ${limit.description}`,
  });
  setRefusalHeaders(res.headers, limit, v, ctx.now);
  return res;
}

function withLimitHeaders(res: Response, limit: Limit, v: Verdict, now: number): Response {
  try {
    setLimitHeaders(responseFields(res), limit, v, now);
    return res;
  } catch {
    // Immutable headers (a response from fetch): copy it to add ours.
    const copy = new Response(res.body, res);
    setLimitHeaders(copy.headers, limit, v, now);
    return copy;
  }
}

/**
 * A shaped request waits for its slot; a client that leaves meanwhile is not forwarded.
 * A slot can be further off than a timer holds (a queue of 30 at 1 per day): from 2^31 ms
 * a timer fires at once, so a long wait is taken in turns.
 */
async function holdThenForward(
  ctx: RequestContext,
  next: Handler,
  delayMs: number,
): Promise<Response> {
  for (let left = delayMs; left > 0; left -= MAX_TIMER_MS) {
    if (!await pause(Math.min(left, MAX_TIMER_MS), ctx.signal)) {
      return ctx.refuse("client_closed_request");
    }
  }
  return next(ctx);
}
