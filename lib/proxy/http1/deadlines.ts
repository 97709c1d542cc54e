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
  /** Where the wheel keeps the item; -1 when it is not watched. Only the wheel writes it. */
  wheelSlot: number;
}

/**
 * The items sit in an array and each knows its slot, so adding and removing
 * one per request allocates nothing (a Set rebuilt its table every few dozen
 * requests, and some of those tables lived long enough to be promoted).
 */
export class DeadlineWheel {
  private readonly items: Watched[] = [];
  /** Scratch list of a tick's due items (checks add and remove items). */
  private readonly due: Watched[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  /** performance.now() at the last tick (or when the timer started). */
  private lastTick = 0;

  /**
   * The monotonic time as of the last tick while the wheel runs (at most a tick
   * behind), else read now. For deadlines the wheel checks, which are only that
   * precise anyway: a clock read is a runtime call, and a request made several.
   */
  coarseNow(): number {
    return this.timer === undefined ? performance.now() : this.lastTick;
  }

  add(w: Watched): void {
    if (w.wheelSlot >= 0) return;
    w.wheelSlot = this.items.length;
    this.items.push(w);
    if (this.timer === undefined) {
      this.lastTick = performance.now();
      this.timer = setInterval(() => this.tick(this.lastTick = performance.now()), TICK_MS);
      // Watching exchanges must not keep the process alive by itself.
      Deno.unrefTimer(this.timer as unknown as number);
    }
  }

  delete(w: Watched): void {
    const slot = w.wheelSlot;
    if (slot < 0) return;
    w.wheelSlot = -1;
    const last = this.items.pop()!;
    if (last !== w) {
      this.items[slot] = last;
      last.wheelSlot = slot;
    }
    if (this.items.length === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get size(): number {
    return this.items.length;
  }

  /** Checks the items due at `now` (exported for tests, which pass their own clock). */
  tick(now = performance.now()): void {
    const items = this.items;
    const due = this.due;
    for (let i = 0; i < items.length; i++) {
      if (items[i]!.nextCheck <= now) due.push(items[i]!);
    }
    try {
      for (let i = 0; i < due.length; i++) {
        const w = due[i]!;
        // An earlier check may have removed it, or moved its deadline.
        if (w.wheelSlot >= 0 && w.nextCheck <= now) w.check(now);
      }
    } finally {
      due.length = 0;
    }
  }
}

export const deadlines = new DeadlineWheel();
