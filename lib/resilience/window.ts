/**
 * Two counters over a rolling time window, kept in fixed buckets so that
 * adding and reading cost O(1) and memory does not grow with traffic.
 */
export class RollingCounts {
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly bucketMs: number;
  private last = -1;
  private sumA = 0;
  private sumB = 0;

  constructor(readonly windowMs: number, private readonly buckets = 10) {
    this.a = new Float64Array(buckets);
    this.b = new Float64Array(buckets);
    this.bucketMs = windowMs / buckets;
  }

  add(now: number, a: number, b: number): void {
    const i = this.advance(now);
    this.a[i] = this.a[i]! + a;
    this.b[i] = this.b[i]! + b;
    this.sumA += a;
    this.sumB += b;
  }

  /**
   * Takes back what `add(at, a, b)` counted, from the bucket it went to, if that
   * is still in the window ending at `now` (later than `at`); never below zero.
   */
  subtract(at: number, now: number, a: number, b: number): void {
    this.advance(now);
    const idx = Math.floor(at / this.bucketMs);
    if (idx > this.last || this.last - idx >= this.buckets) return;
    const i = idx % this.buckets;
    const takeA = Math.min(a, this.a[i]!);
    const takeB = Math.min(b, this.b[i]!);
    this.a[i] = this.a[i]! - takeA;
    this.b[i] = this.b[i]! - takeB;
    this.sumA -= takeA;
    this.sumB -= takeB;
  }

  /** First counter over the window ending at `now`. */
  totalA(now: number): number {
    this.advance(now);
    return this.sumA;
  }

  /** Second counter over the window ending at `now`. */
  totalB(now: number): number {
    this.advance(now);
    return this.sumB;
  }

  reset(): void {
    this.a.fill(0);
    this.b.fill(0);
    this.sumA = this.sumB = 0;
    this.last = -1;
  }

  /** Expires buckets that fell out of the window; returns the slot for `now`. */
  private advance(now: number): number {
    const idx = Math.floor(now / this.bucketMs);
    if (this.last < 0 || idx - this.last >= this.buckets) {
      if (this.last >= 0) this.reset();
    } else {
      // A clock that stepped back keeps counting in the newest bucket.
      for (let k = this.last + 1; k <= idx; k++) this.clear(k % this.buckets);
    }
    if (idx > this.last) this.last = idx;
    return this.last % this.buckets;
  }

  private clear(slot: number): void {
    this.sumA -= this.a[slot]!;
    this.sumB -= this.b[slot]!;
    this.a[slot] = 0;
    this.b[slot] = 0;
  }
}
