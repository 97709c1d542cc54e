/**
 * Sliding log: the time of every admitted unit in the last `perMs`. Exact at any
 * instant, at the price of memory proportional to the limit (so the schema caps
 * the limit; `sliding_window` approximates it in two counters).
 */
import type { Algorithm, Step } from "./algorithm.ts";

export interface SlidingLogState {
  /** Admission times (ms), oldest first; one entry per unit of cost. */
  readonly times: readonly number[];
}

export function slidingLog(limit: number, perMs: number): Algorithm<SlidingLogState> {
  return {
    spec: { kind: "sliding_log", limit, perMs },
    limit,
    step(state, now, cost): Step<SlidingLogState> {
      const old = state?.times ?? [];
      // An entry at t counts while t > now − perMs.
      let first = 0;
      while (first < old.length && old[first]! <= now - perMs) first++;
      const live = old.length - first;
      const allowed = live + cost <= limit;
      let times: readonly number[];
      let retryAfterMs = 0;
      if (allowed) {
        times = withAdmitted(old.slice(first), now, cost);
      } else {
        times = first === 0 ? old : old.slice(first);
        // The entry whose expiry frees enough room for `cost`.
        retryAfterMs = times[live + cost - limit - 1]! + perMs - now;
      }
      const newest = times.length > 0 ? times[times.length - 1]! : null;
      return {
        allowed,
        // A limit lowered by a reload can leave more entries than it allows.
        remaining: Math.max(0, limit - times.length),
        resetMs: newest === null ? 0 : newest + perMs - now,
        retryAfterMs,
        delayMs: 0,
        state: { times },
      };
    },
  };
}

/**
 * `times` with `cost` entries at `now`, kept in order: after a clock step back,
 * `now` is older than the newest entries, and the log is read oldest first.
 */
function withAdmitted(times: number[], now: number, cost: number): number[] {
  let at = times.length;
  while (at > 0 && times[at - 1]! > now) at--;
  if (at === times.length) {
    for (let i = 0; i < cost; i++) times.push(now);
  } else {
    times.splice(at, 0, ...Array.from({ length: cost }, () => now));
  }
  return times;
}
