/**
 * Passive outlier ejection: a target that fails several requests in a row
 * (5xx answers or broken connections) leaves the balancer for a while. Each
 * ejection soon after the previous one doubles the period, up to a maximum.
 */
import type { OutlierConfig } from "./schema.ts";

export interface OutlierParams {
  consecutiveFailures: number;
  baseMs: number;
  maxMs: number;
}

export function outlierParams(c: OutlierConfig): OutlierParams {
  return {
    consecutiveFailures: c.consecutive_failures,
    baseMs: c.base_ejection_s * 1000,
    maxMs: c.max_ejection_s * 1000,
  };
}

export class OutlierDetector {
  consecutive = 0;
  /** End of the current (or last) ejection, clock ms; 0 if never ejected. */
  ejectedUntil = 0;
  /** Ejections in a row without a calm period between them; sets the next period. */
  private level = 0;
  /** Total ejections (for the admin API and metrics). */
  ejections = 0;
  onEject: ((until: number, periodMs: number) => void) | null = null;

  constructor(private readonly params: OutlierParams) {}

  ejected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  success(): void {
    this.consecutive = 0;
  }

  failure(now: number): void {
    if (this.ejected(now)) return;
    if (++this.consecutive < this.params.consecutiveFailures) return;
    // A target that stayed in for the longest period since its last ejection starts over.
    if (this.ejectedUntil > 0 && now - this.ejectedUntil >= this.params.maxMs) this.level = 0;
    const period = Math.min(this.params.maxMs, this.params.baseMs * 2 ** this.level);
    this.level++;
    this.ejections++;
    this.consecutive = 0;
    this.ejectedUntil = now + period;
    this.onEject?.(this.ejectedUntil, period);
  }
}
