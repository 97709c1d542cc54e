/**
 * A bulkhead: at most `maxConcurrent` requests in flight to one upstream, and a
 * small bounded queue of requests waiting for a slot. Beyond that a request is
 * refused at once, so a hanging upstream ties up a fixed share of the gateway
 * and never the routes to other upstreams.
 */

export interface BulkheadParams {
  maxConcurrent: number;
  queue: number;
  queueTimeoutMs: number;
}

interface Waiter {
  grant: (ok: boolean) => void;
  timer: ReturnType<typeof setTimeout>;
  signal: AbortSignal | null;
  onAbort: () => void;
}

export class Bulkhead {
  active = 0;
  /** Requests refused because every slot and queue place was taken, or the wait timed out. */
  rejected = 0;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly params: BulkheadParams) {}

  get queued(): number {
    return this.waiting.length;
  }

  get limit(): number {
    return this.params.maxConcurrent;
  }

  /** Takes a slot if one is free. */
  tryAcquire(): boolean {
    if (this.active >= this.params.maxConcurrent) return false;
    this.active++;
    return true;
  }

  /**
   * Waits in the queue for a slot; resolves false when the queue is full, the
   * wait times out or `signal` aborts. Call after `tryAcquire` failed.
   */
  wait(signal: AbortSignal | null): Promise<boolean> {
    if (this.waiting.length >= this.params.queue || signal?.aborted) {
      this.rejected++;
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      const w: Waiter = {
        grant: resolve,
        signal,
        timer: setTimeout(() => this.leave(w, true), this.params.queueTimeoutMs),
        onAbort: () => this.leave(w, false),
      };
      signal?.addEventListener("abort", w.onAbort, { once: true });
      this.waiting.push(w);
    });
  }

  /** Gives a slot back; the longest waiter gets it. */
  release(): void {
    this.active--;
    this.drain();
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.active < this.params.maxConcurrent) {
      const w = this.waiting.shift()!;
      this.active++;
      this.settle(w, true);
    }
  }

  private leave(w: Waiter, timedOut: boolean): void {
    const i = this.waiting.indexOf(w);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    if (timedOut) this.rejected++;
    this.settle(w, false);
  }

  private settle(w: Waiter, ok: boolean): void {
    clearTimeout(w.timer);
    w.signal?.removeEventListener("abort", w.onAbort);
    w.grant(ok);
  }
}
