/**
 * Where rate-limit state lives. A store offers one operation: decide a request
 * against the limits that apply to it, atomically, and keep the new state. The
 * algorithms stay pure (lib/ratelimit/algorithms); a store only holds state.
 *
 * Implementations:
 * - `MemoryLimiterStore`: in this isolate, bounded (cap on keys, idle expiry);
 *   synchronous, so a decision cannot interleave with another.
 * - `RedisLimiterStore`: one atomic Lua script per decision (decisions that
 *   queue under load share a call), shared by every gateway instance that uses
 *   the same Redis.
 * - Under `--workers N`, `WorkerLimiterStore` (lib/cluster/shared_limiter.ts):
 *   fixed-size states in a `SharedArrayBuffer` table every worker decides in
 *   under one lock, calling the same `step` functions; the rest (`sliding_log`,
 *   long keys) in the main thread, which decides such a request whole.
 */
import type { Algorithm, Verdict } from "../ratelimit/algorithms/index.ts";

/** One limit as a store sees it. */
export interface StoredLimit {
  /** Namespaces the limit's keys: limits share counters only when they share an id. */
  readonly id: string;
  readonly algorithm: Algorithm;
  /** Units one request consumes. */
  readonly cost: number;
  /** A shadow limit's refusal neither refuses the request nor holds back the other limits. */
  readonly shadow: boolean;
}

export interface LimiterStore {
  /**
   * Decides one request against `limits` at once (`keys[i]` is the request's
   * key for `limits[i]`). Atomic: if no enforcing limit refuses, every limit
   * that admits consumes; if one refuses, nothing is consumed. Returns one
   * verdict per limit, in order. Rejects with `StoreUnavailableError` when the
   * store cannot answer (the caller applies `on_error`).
   */
  decide(
    limits: readonly StoredLimit[],
    keys: readonly string[],
    now: number,
  ): Verdict[] | Promise<Verdict[]>;
}

/** The process-local store (`store.kind: memory`), which outlives plans; each plan applies its settings. */
export interface LocalLimiterStore extends LimiterStore {
  configure(options: MemoryStoreOptions): void;
}

export interface MemoryStoreOptions {
  /** Keys held at most; least recently used ones are dropped past it. */
  maxKeys: number;
  /** Sliding-log times held at most, over every key (`log_max_bytes` / 8); none: no bound. */
  maxLogEntries?: number;
}

/** The store could not decide (Redis down or too slow). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}
