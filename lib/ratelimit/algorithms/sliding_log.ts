/**
 * Sliding log: the time of every admitted unit in the last `perMs`. Exact at any
 * instant, at the price of memory proportional to the limit (so the schema caps
 * the limit; `sliding_window` approximates it in two counters).
 */
import type { Algorithm, Step } from "./algorithm.ts";

/**
 * Admission times (ms), oldest first, one entry per unit of cost: the log is
 * `times[start, end)`. States share their array: a step that admits appends
 * past `end` when its state holds the array's tail, so a later state sees more
 * of the array and an earlier one (a step a store did not keep) still sees
 * exactly its own range. Copying the log on every step instead cost O(limit):
 * 8.9 us and 80 KB per request at a limit of 10,000 (bench/NOTES.md).
 */
export interface SlidingLogState {
  readonly times: number[];
  readonly start: number;
  readonly end: number;
}

/**
 * Expired entries stay at the front of the array until they are more than half
 * the live ones (and MIN_COMPACT), then the live ones move to a new array: two
 * copies per admitted entry at most, and an array at most 1.5 times the log.
 */
const MIN_COMPACT = 32;

export function slidingLog(limit: number, perMs: number): Algorithm<SlidingLogState> {
  return {
    spec: { kind: "sliding_log", limit, perMs },
    limit,
    // What the array holds: the log and the expired times not yet dropped.
    weight: (state) => state.times.length,
    step(state, now, cost): Step<SlidingLogState> {
      const times = state?.times ?? [];
      const end = state?.end ?? 0;
      // An entry at t counts while t > now − perMs.
      const first = firstAfter(times, state?.start ?? 0, end, now - perMs);
      const live = end - first;
      if (live + cost > limit) {
        return {
          allowed: false,
          // A limit lowered by a reload can leave more entries than it allows.
          remaining: Math.max(0, limit - live),
          resetMs: live === 0 ? 0 : times[end - 1]! + perMs - now,
          // The entry whose expiry frees enough room for `cost`.
          retryAfterMs: times[first + live + cost - limit - 1]! + perMs - now,
          delayMs: 0,
          state: { times, start: first, end },
        };
      }
      const next = admitted(times, first, end, now, cost);
      return {
        allowed: true,
        remaining: Math.max(0, limit - (next.end - next.start)),
        resetMs: next.times[next.end - 1]! + perMs - now,
        retryAfterMs: 0,
        delayMs: 0,
        state: next,
      };
    },
  };
}

/** Index of the first entry of times[from, end) later than `t` (end if none): they are in order. */
function firstAfter(times: readonly number[], from: number, end: number, t: number): number {
  let lo = from;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The log times[first, end) with `cost` entries at `now`, kept in order: after
 * a clock step back `now` is older than the newest entries, and the log is
 * read oldest first. Appends in place when the range is the array's tail and
 * `now` goes last; otherwise, or when the expired prefix has grown too long,
 * the live entries move to a new array.
 */
function admitted(
  times: number[],
  first: number,
  end: number,
  now: number,
  cost: number,
): SlidingLogState {
  const inOrder = end === first || times[end - 1]! <= now;
  if (inOrder && end === times.length && (first < MIN_COMPACT || 2 * first <= end - first)) {
    for (let i = 0; i < cost; i++) times.push(now);
    return { times, start: first, end: end + cost };
  }
  let at = end;
  while (at > first && times[at - 1]! > now) at--;
  const next = new Array<number>(end - first + cost);
  let j = 0;
  for (let i = first; i < at; i++) next[j++] = times[i]!;
  for (let i = 0; i < cost; i++) next[j++] = now;
  for (let i = at; i < end; i++) next[j++] = times[i]!;
  return { times: next, start: 0, end: next.length };
}
