/**
 * What every limiting algorithm is: a pure function of (state, now, cost) that
 * says whether a request of `cost` units is admitted at `now` and what the
 * state becomes if it is. Stores hold the state; they decide when to keep it.
 *
 * Arithmetic is kept in whole numbers wherever the configuration is (counts,
 * milliseconds, and token "units" scaled by the window length), so that the
 * TypeScript functions and their Redis (Lua) twins give the same answers.
 */

/** The answer for one limit. Every number is a whole number. */
export interface Verdict {
  allowed: boolean;
  /** Units left after this request (after consuming it, if admitted). */
  remaining: number;
  /** Milliseconds until the full limit is available again; the state is empty by then. */
  resetMs: number;
  /** When refused: milliseconds until a request of the same cost could be admitted. */
  retryAfterMs: number;
  /** When admitted by a shaping limit: milliseconds to hold the request before forwarding it. */
  delayMs: number;
}

/** A verdict with the state to keep if the request is admitted. */
export interface Step<S> extends Verdict {
  state: S;
}

/**
 * Plain data describing an algorithm and its parameters (structured-cloneable):
 * what a Redis script or another isolate needs to run the same algorithm.
 * Durations are milliseconds; `rate` is units per `perMs`.
 */
export type AlgorithmSpec =
  | { kind: "token_bucket"; rate: number; perMs: number; burst: number }
  | {
    kind: "leaky_bucket";
    mode: "police" | "shape";
    rate: number;
    perMs: number;
    capacity: number;
  }
  | { kind: "fixed_window"; limit: number; window: WindowSpec }
  | { kind: "sliding_window"; limit: number; perMs: number }
  | { kind: "sliding_log"; limit: number; perMs: number };

/** Fixed windows aligned to the Unix epoch, or calendar days and months in UTC. */
export type WindowSpec = { every: number } | { calendar: "day" | "month" };

export interface Algorithm<S = unknown> {
  readonly spec: AlgorithmSpec;
  /** The number advertised as `RateLimit-Limit`. */
  readonly limit: number;
  /** The verdict for a request of `cost` at `now` given the stored state (undefined: none). */
  step(state: S | undefined, now: number, cost: number): Step<S>;
  /** How a state fits in a few numbers, for stores with fixed-size slots; absent if it does not. */
  readonly packed?: PackedState<S>;
  /**
   * For a state whose size grows with the traffic (a sliding log), the numbers
   * it holds, so that a store bounds their sum; absent where a state is a few.
   */
  readonly weight?: (state: S) => number;
}

/** A state as `size` numbers (at most `MAX_PACKED_SIZE`), for a shared-memory table. */
export interface PackedState<S> {
  readonly size: number;
  write(state: S, into: Float64Array, at: number): void;
  read(from: Float64Array, at: number): S;
}

export const MAX_PACKED_SIZE = 3;
