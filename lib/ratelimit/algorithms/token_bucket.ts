/**
 * Token bucket: `burst` tokens at most, refilled at `rate` per `perMs`. A burst
 * up to the bucket's size passes at once, then the sustained rate applies.
 *
 * Tokens are counted in units of 1/perMs token, so that refilling adds exactly
 * `rate` units a millisecond and an integer configuration stays in integers.
 */
import type { Algorithm, PackedState, Step } from "./algorithm.ts";
import { wholeRate } from "./whole_rate.ts";

export interface TokenBucketState {
  /** Tokens × perMs. */
  readonly units: number;
  /** When `units` was computed (ms). */
  readonly at: number;
}

export interface TokenBucketParams {
  rate: number;
  perMs: number;
  burst: number;
}

export function tokenBucket(p: TokenBucketParams): Algorithm<TokenBucketState> {
  const { burst } = p;
  const { rate, perMs } = wholeRate(p.rate, p.perMs, burst);
  const capacity = burst * perMs;
  return {
    spec: { kind: "token_bucket", rate, perMs, burst },
    limit: burst,
    packed: PACKED,
    step(state, now, cost): Step<TokenBucketState> {
      let units = capacity;
      let at = now;
      if (state !== undefined) {
        at = Math.max(now, state.at);
        units = Math.min(capacity, state.units + Math.max(0, now - state.at) * rate);
      }
      const needed = cost * perMs;
      const allowed = units >= needed;
      if (allowed) units -= needed;
      // Refill runs from the state's time, ahead of `now` after a clock step back.
      const ahead = at - now;
      return {
        allowed,
        remaining: Math.floor(units / perMs),
        resetMs: ahead + Math.ceil((capacity - units) / rate),
        retryAfterMs: allowed ? 0 : ahead + Math.ceil((needed - units) / rate),
        delayMs: 0,
        state: { units, at },
      };
    },
  };
}

const PACKED: PackedState<TokenBucketState> = {
  size: 2,
  write(s, into, at) {
    into[at] = s.units;
    into[at + 1] = s.at;
  },
  read: (from, at) => ({ units: from[at]!, at: from[at + 1]! }),
};
