/**
 * A circuit breaker for one upstream target: closed (requests flow, outcomes
 * counted over a rolling window), open (requests refused at once until the
 * open period ends), half-open (a fixed number of probes decide whether to close
 * again or reopen). Time is passed in, so the machine is tested exactly.
 */
import type { CircuitBreakerConfig } from "./schema.ts";
import { RollingCounts } from "./window.ts";

export type CircuitState = "closed" | "open" | "half_open";

export interface BreakerParams {
  failureRatio: number;
  minRequests: number;
  windowMs: number;
  /** Failures in a row that open the circuit; Infinity when not configured. */
  consecutiveFailures: number;
  openMs: number;
  halfOpenRequests: number;
}

export function breakerParams(c: CircuitBreakerConfig): BreakerParams {
  return {
    failureRatio: c.failure_ratio,
    minRequests: c.min_requests,
    windowMs: c.window_s * 1000,
    consecutiveFailures: c.consecutive_failures ?? Infinity,
    openMs: c.open_s * 1000,
    halfOpenRequests: c.half_open_requests,
  };
}

/** Why the circuit changed state; `local` is false when another instance opened it. */
export type BreakerListener = (state: CircuitState, openUntil: number, local: boolean) => void;

export class CircuitBreaker {
  private current: CircuitState = "closed";
  /** End of the open period (clock ms). */
  openUntil = 0;
  consecutive = 0;
  private probesAdmitted = 0;
  private probeSuccesses = 0;
  private readonly counts: RollingCounts;
  /** Times the circuit opened. */
  trips = 0;
  /** Half-open periods so far: a probe decides only the period that admitted it. */
  period = 0;
  onChange: BreakerListener | null = null;

  constructor(private readonly params: BreakerParams) {
    this.counts = new RollingCounts(params.windowMs);
  }

  /** The state at `now` (an open circuit whose period ended reads as half-open). */
  state(now: number): CircuitState {
    if (this.current === "open" && now >= this.openUntil) return "half_open";
    return this.current;
  }

  /** Whether a request may be sent now. Does not take a probe slot: `admit` does. */
  allows(now: number): boolean {
    if (this.current === "closed") return true;
    if (this.current === "open") {
      if (now < this.openUntil) return false;
      this.halfOpen();
    }
    return this.probesAdmitted < this.params.halfOpenRequests;
  }

  /** Called as a request is sent; returns whether it is a half-open probe. */
  admit(now: number): boolean {
    if (this.current === "closed" || !this.allows(now)) return false;
    this.probesAdmitted++;
    return true;
  }

  success(now: number, probe: boolean): void {
    if (probe) {
      if (this.current !== "half_open") return;
      if (++this.probeSuccesses >= this.params.halfOpenRequests) this.close();
      return;
    }
    if (this.current !== "closed") return;
    this.consecutive = 0;
    this.counts.add(now, 1, 0);
    // The request that brings the window to min_requests may be a success.
    if (this.ratioExceeded(now)) this.open(now + this.params.openMs, true);
  }

  failure(now: number, probe: boolean): void {
    if (probe) {
      if (this.current === "half_open") this.open(now + this.params.openMs, true);
      return;
    }
    if (this.current !== "closed") return;
    this.consecutive++;
    this.counts.add(now, 1, 1);
    if (this.consecutive >= this.params.consecutiveFailures) {
      this.open(now + this.params.openMs, true);
      return;
    }
    if (this.ratioExceeded(now)) this.open(now + this.params.openMs, true);
  }

  /** At least min_requests in the window, and failure_ratio of them or more failed. */
  private ratioExceeded(now: number): boolean {
    const total = this.counts.totalA(now);
    return total >= this.params.minRequests &&
      this.counts.totalB(now) >= this.params.failureRatio * total;
  }

  /** A probe ended without an outcome (the client went away): its slot is free again. */
  abandon(probe: boolean): void {
    if (probe && this.current === "half_open" && this.probesAdmitted > 0) this.probesAdmitted--;
  }

  /** Opens the circuit until `until` because another instance did; never shortens an open period. */
  openRemotely(until: number, now: number): void {
    if (until <= now || (this.current === "open" && this.openUntil >= until)) return;
    this.open(until, false);
  }

  /** Milliseconds until a request may be tried again (0 when one may go now). */
  waitMs(now: number): number {
    if (this.current === "open") return Math.max(0, this.openUntil - now);
    if (this.current === "half_open" && this.probesAdmitted >= this.params.halfOpenRequests) {
      // Probes are in flight; their outcome decides, usually within a request's time.
      return 1000;
    }
    return 0;
  }

  /** Requests and failures in the current window (for the admin API). */
  windowCounts(now: number): { requests: number; failures: number } {
    return { requests: this.counts.totalA(now), failures: this.counts.totalB(now) };
  }

  private open(until: number, local: boolean): void {
    this.current = "open";
    this.openUntil = until;
    this.probesAdmitted = 0;
    this.probeSuccesses = 0;
    this.trips++;
    this.onChange?.("open", until, local);
  }

  private halfOpen(): void {
    this.current = "half_open";
    this.period++;
    this.probesAdmitted = 0;
    this.probeSuccesses = 0;
    this.onChange?.("half_open", this.openUntil, true);
  }

  private close(): void {
    this.current = "closed";
    this.consecutive = 0;
    this.counts.reset();
    this.onChange?.("closed", 0, true);
  }
}
