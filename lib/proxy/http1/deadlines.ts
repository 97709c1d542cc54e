/**
 * One coarse timer for every exchange in flight, instead of two timers and an
 * abort listener per request: arming and clearing a timer per request showed
 * up in profiles, and so did the client's abort signal (in Deno 2.9 every
 * access to `request.signal` makes each response allocate an abort event).
 * Deadlines are checked every TICK_MS, so timeouts fire up to that much late.
 */

export const TICK_MS = 10;

export interface Watched {
  /** Monotonic time (performance.now) of the next check this item wants; Infinity for none. */
  nextCheck: number;
  /** Called at or after `nextCheck`; updates `nextCheck` (Infinity to stop being called). */
  check(now: number): void;
}

class DeadlineWheel {
  private readonly items = new Set<Watched>();
  private timer: ReturnType<typeof setInterval> | undefined;

  add(w: Watched): void {
    this.items.add(w);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      // Watching exchanges must not keep the process alive by itself.
      Deno.unrefTimer(this.timer as unknown as number);
    }
  }

  delete(w: Watched): void {
    this.items.delete(w);
    if (this.items.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    const now = performance.now();
    for (const w of this.items) {
      if (w.nextCheck <= now) w.check(now);
    }
  }
}

export const deadlines = new DeadlineWheel();
