/**
 * Retries: which failures are tried again, how long to wait (exponential
 * backoff with jitter), and the budget that keeps retries a bounded fraction of
 * an upstream's traffic so that they cannot multiply an outage.
 */
import type { RetriesConfig, RetryPolicyConfig } from "./schema.ts";
import { RollingCounts } from "./window.ts";
import type { UpstreamErrorKind } from "../proxy/http1/errors.ts";
import { IDEMPOTENT_METHODS } from "../proxy/http1/client.ts";

export class RetryPolicy {
  readonly attempts: number;
  readonly bufferBodyBytes: number;
  private readonly methods: ReadonlySet<string>;
  private readonly statuses: ReadonlySet<number>;
  private readonly onConnect: boolean;
  private readonly onTimeout: boolean;
  private readonly onReset: boolean;

  constructor(c: RetryPolicyConfig, private readonly backoff = backoffFn(c)) {
    this.attempts = c.attempts;
    this.bufferBodyBytes = c.buffer_body_bytes;
    this.methods = new Set(c.methods ?? IDEMPOTENT_METHODS);
    this.statuses = new Set(c.on.filter((x): x is number => typeof x === "number"));
    this.onConnect = c.on.includes("connect_error");
    this.onTimeout = c.on.includes("timeout");
    this.onReset = c.on.includes("reset");
  }

  /** Whether the request may be sent again once the upstream has seen it. */
  mayResend(method: string): boolean {
    return this.methods.has(method);
  }

  /**
   * Whether a failed exchange is retried. A request the upstream never saw
   * (connect errors) is safe to send again whatever its method.
   */
  retriesError(kind: UpstreamErrorKind, method: string): boolean {
    switch (kind) {
      case "connect_error":
      case "connect_timeout":
        return this.onConnect;
      case "timeout":
        return this.onTimeout && this.mayResend(method);
      case "reset":
        return this.onReset && this.mayResend(method);
      default:
        return false;
    }
  }

  retriesStatus(status: number, method: string): boolean {
    return this.statuses.has(status) && this.mayResend(method);
  }

  /** Delay before retry number `n` (1 for the first retry). */
  delayMs(n: number): number {
    return this.backoff(n);
  }
}

/**
 * Exponential backoff with "equal jitter": half the capped exponential delay is
 * fixed and half random, so retries spread out but never fire back to back.
 */
export function backoffMs(
  n: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** (n - 1));
  return cap / 2 + random() * (cap / 2);
}

function backoffFn(c: RetryPolicyConfig): (n: number) => number {
  return (n) => backoffMs(n, c.backoff_ms, c.max_backoff_ms);
}

/** The least share of `request_ms` a retry must have left after its backoff. */
export const RETRY_MIN_SHARE = 0.1;

/**
 * Whether a retry has time to be worth starting: what is left of the request's
 * deadline after the backoff must be at least what the failed attempt took (the
 * best estimate of what the next one needs) and at least a tenth of `request_ms`
 * (a failure that came back at once says little about how long an answer takes).
 * With less, the retry could hardly answer in time: it would cost the upstream a
 * request and turn the failed attempt's answer into a 504.
 */
export function retryHasTime(
  leftAfterBackoffMs: number,
  failedAttemptMs: number,
  requestMs: number,
): boolean {
  return leftAfterBackoffMs >= failedAttemptMs && leftAfterBackoffMs >= requestMs * RETRY_MIN_SHARE;
}

export interface BudgetParams {
  ratio: number;
  minRetries: number;
  windowMs: number;
}

export function budgetParams(c: RetriesConfig | undefined): BudgetParams {
  return {
    ratio: c?.budget_ratio ?? 0.2,
    minRetries: c?.budget_min_retries ?? 10,
    windowMs: (c?.budget_window_s ?? 10) * 1000,
  };
}

/**
 * Retries allowed per upstream: at most `ratio` of the requests sent in the
 * window, or a small floor when that is more, so that a quiet upstream can still retry.
 */
export class RetryBudget {
  private readonly counts: RollingCounts;
  /** Retries refused because the budget was spent (for the admin API and metrics). */
  exhausted = 0;
  /** Retries not started because too little of `request_ms` was left (`retryHasTime`). */
  tooLate = 0;

  constructor(private readonly params: BudgetParams) {
    this.counts = new RollingCounts(params.windowMs);
  }

  /** Counts a first attempt. */
  request(now: number): void {
    this.counts.add(now, 1, 0);
  }

  /** Takes a retry from the budget if one is left. */
  tryRetry(now: number): boolean {
    const allowed = Math.max(this.params.minRetries, this.params.ratio * this.counts.totalA(now));
    if (this.counts.totalB(now) + 1 > allowed) {
      this.exhausted++;
      return false;
    }
    this.counts.add(now, 0, 1);
    return true;
  }

  /** Returns a retry taken at `takenAt` that was not made after all (its target went away). */
  giveBack(takenAt: number, now: number): void {
    this.counts.subtract(takenAt, now, 0, 1);
  }

  /** Counts a retry not started for lack of time; it takes nothing from the budget. */
  late(): void {
    this.tooLate++;
  }

  snapshot(
    now: number,
  ): { requests: number; retries: number; exhausted: number; too_late: number } {
    return {
      requests: this.counts.totalA(now),
      retries: this.counts.totalB(now),
      exhausted: this.exhausted,
      too_late: this.tooLate,
    };
  }
}
