/**
 * Passive outlier ejection: a target that fails several requests in a row
 * (5xx answers or broken connections) leaves the balancer for a while. Each
 * ejection soon after the previous one doubles the period, up to a maximum.
 *
 * An upstream's `EjectionCap` bounds how many of its targets may be ejected at
 * once (`max_ejection_percent`): when most targets fail together the cause is
 * seldom the targets one by one, and ejecting them all would leave the upstream
 * answering 503 until the periods end, even after they recovered.
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

/**
 * The settings that shape one target's ejection record, and so key it across
 * reloads. `max_ejection_percent` is not one of them: it bounds the upstream as
 * a whole, and a reload that changes only the cap keeps the records.
 */
export function detectorSettings(c: OutlierConfig): unknown {
  return {
    consecutive_failures: c.consecutive_failures,
    base_ejection_s: c.base_ejection_s,
    max_ejection_s: c.max_ejection_s,
  };
}

/** Asked before an ejection is made: whether the upstream may lose one more target now. */
export interface EjectionGate {
  allows(now: number): boolean;
  /** An ejection was due but not made. */
  refused(target: OutlierDetector, now: number): void;
}

export class OutlierDetector {
  consecutive = 0;
  /** End of the current (or last) ejection, clock ms; 0 if never ejected. */
  ejectedUntil = 0;
  /** Ejections in a row without a calm period between them; sets the next period. */
  private level = 0;
  /** Total ejections (for the admin API and metrics). */
  ejections = 0;
  /** Ejections that were due but refused by the upstream's cap (`max_ejection_percent`). */
  refused = 0;
  onEject: ((until: number, periodMs: number) => void) | null = null;

  constructor(private readonly params: OutlierParams) {}

  ejected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  success(): void {
    this.consecutive = 0;
  }

  /**
   * Counts a failure; ejects the target when it completes a streak and `gate`
   * (the upstream's cap) allows it. A refused ejection keeps the streak, so the
   * target is ejected at its next failure once the cap has room again.
   */
  failure(now: number, gate: EjectionGate | null = null): void {
    if (this.ejected(now)) return;
    if (++this.consecutive < this.params.consecutiveFailures) return;
    if (gate !== null && !gate.allows(now)) {
      this.consecutive = this.params.consecutiveFailures;
      this.refused++;
      gate.refused(this, now);
      return;
    }
    // A target that stayed in for the longest period since its last ejection starts over.
    if (this.ejectedUntil > 0 && now - this.ejectedUntil >= this.params.maxMs) this.level = 0;
    const period = Math.min(this.params.maxMs, this.params.baseMs * 2 ** this.level);
    this.level++;
    this.ejections++;
    this.consecutive = 0;
    this.ejectedUntil = now + period;
    this.onEject?.(this.ejectedUntil, period);
  }

  /** Ends the current ejection now (the cap shrank below the ejections in force). */
  readmit(now: number): void {
    if (this.ejected(now)) this.ejectedUntil = now;
  }
}

/**
 * The share of an upstream's targets that passive ejection may hold out at
 * once. Built per plan over the plan's targets (their records outlive it); it
 * counts the ejections in force when one is due, so an ejection that ends frees
 * its place without any bookkeeping. Nothing here runs on a request that does
 * not complete a failure streak.
 */
export class EjectionCap implements EjectionGate {
  /** The pool: each target's record and its id. */
  private readonly ids = new Map<OutlierDetector, string>();

  constructor(
    /** `max_ejection_percent`: 0-100. */
    readonly percent: number,
    private readonly onRefused: (target: string, ejected: number, max: number) => void = () => {},
  ) {}

  /** Adds a target that takes traffic (weight above zero) to the pool the cap is a share of. */
  add(d: OutlierDetector, id: string): void {
    this.ids.set(d, id);
  }

  /** The target a record belongs to. */
  id(d: OutlierDetector): string {
    return this.ids.get(d) ?? "";
  }

  /** Targets of the pool ejected at `now`. */
  ejected(now: number): number {
    let n = 0;
    for (const d of this.ids.keys()) if (d.ejected(now)) n++;
    return n;
  }

  /** Most targets that may be ejected at once: floor(percent of the pool); 0 for one target under 100. */
  get maxEjected(): number {
    return Math.floor((this.ids.size * this.percent) / 100);
  }

  allows(now: number): boolean {
    return this.ejected(now) < this.maxEjected;
  }

  refused(target: OutlierDetector, now: number): void {
    this.onRefused(this.id(target), this.ejected(now), this.maxEjected);
  }

  /** Refused ejections over the pool, since each record began. */
  get refusedTotal(): number {
    let n = 0;
    for (const d of this.ids.keys()) n += d.refused;
    return n;
  }

  /**
   * Ends the ejections beyond the cap, soonest to end first: a reload may shrink
   * the pool or lower the cap while the records (kept across it) hold more out.
   * Returns the readmitted records.
   */
  enforce(now: number): OutlierDetector[] {
    const readmitted: OutlierDetector[] = [];
    if (this.ejected(now) <= this.maxEjected) return readmitted;
    const out = [...this.ids.keys()].filter((d) => d.ejected(now))
      .sort((a, b) => a.ejectedUntil - b.ejectedUntil);
    for (const d of out) {
      if (this.ejected(now) <= this.maxEjected) break;
      d.readmit(now);
      readmitted.push(d);
    }
    return readmitted;
  }
}
