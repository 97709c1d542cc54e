/**
 * Leaky bucket, in both of its meanings. Each request pours `perMs` units per
 * unit of cost into a bucket that leaks `rate` units a millisecond (so one
 * request drains in perMs/rate ms) and holds `capacity` requests' worth.
 *
 * - `police` (the meter): a request that would overflow the bucket is refused;
 *   what passes goes on at once. Admits the same traffic as a token bucket.
 * - `shape` (the queue): the bucket is the queue. A request that fits waits until
 *   everything ahead of it has drained, so requests leave at the fixed rate
 *   however they arrive; only what overflows the queue is refused. `capacity`
 *   is the queue plus the request being released.
 */
import type { Algorithm, PackedState, Step } from "./algorithm.ts";
import { wholeRate } from "./whole_rate.ts";

export interface LeakyBucketState {
  /** Water level in units (perMs per request). */
  readonly level: number;
  /** When `level` was measured (ms). */
  readonly at: number;
}

export interface LeakyBucketParams {
  mode: "police" | "shape";
  rate: number;
  perMs: number;
  /** Requests the bucket holds: `burst` when policing, `queue + 1` when shaping. */
  capacity: number;
}

export function leakyBucket(p: LeakyBucketParams): Algorithm<LeakyBucketState> {
  const { mode, capacity } = p;
  const { rate, perMs } = wholeRate(p.rate, p.perMs, capacity);
  const full = capacity * perMs;
  const shaping = mode === "shape";
  return {
    spec: { kind: "leaky_bucket", mode, rate, perMs, capacity },
    limit: capacity,
    packed: PACKED,
    step(state, now, cost): Step<LeakyBucketState> {
      let level = 0;
      let at = now;
      if (state !== undefined) {
        at = Math.max(now, state.at);
        level = Math.max(0, state.level - Math.max(0, now - state.at) * rate);
      }
      const poured = cost * perMs;
      const allowed = level + poured <= full;
      // The bucket drains from the state's time, which a peer with a clock ahead of
      // ours, or our own clock before it stepped back, may have set ahead of `now`.
      const ahead = at - now;
      // A shaped request leaves when the water ahead of it has drained.
      const delayMs = allowed && shaping ? Math.ceil(ahead + level / rate) : 0;
      const retryAfterMs = allowed ? 0 : ahead + Math.ceil((level + poured - full) / rate);
      if (allowed) level += poured;
      return {
        allowed,
        // A bucket made smaller by a reload can hold more than it now takes.
        remaining: Math.max(0, Math.floor((full - level) / perMs)),
        resetMs: ahead + Math.ceil(level / rate),
        retryAfterMs,
        delayMs,
        state: { level, at },
      };
    },
  };
}

const PACKED: PackedState<LeakyBucketState> = {
  size: 2,
  write(s, into, at) {
    into[at] = s.level;
    into[at + 1] = s.at;
  },
  read: (from, at) => ({ level: from[at]!, at: from[at + 1]! }),
};
