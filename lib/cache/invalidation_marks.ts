/**
 * When each target URI was last invalidated, in a `SharedArrayBuffer` every
 * worker isolate of `--workers N` maps. Each worker keeps its own memory
 * cache (entries are objects, not bytes to share), so a write proxied by one
 * worker must reach the entries and fills of the others: they compare what
 * they hold with the mark of its URI, an atomic read, instead of waiting for
 * a message that would arrive after the write's answer.
 *
 * URIs are hashed to `SLOTS` slots; a slot keeps the latest mark of every
 * URI that falls in it. Two URIs in one slot cost an extra trip upstream for
 * the one not written, never a stale answer.
 */
import { mixedHash } from "../core/hash.ts";

/** 64 Ki slots of 8 bytes: 512 KiB for the process, whatever the number of workers. */
const SLOTS = 1 << 16;

export class InvalidationMarks {
  /** Milliseconds of the gateway's clock; 0 for a slot never marked. */
  private readonly marks: BigInt64Array;

  constructor(readonly buffer = new SharedArrayBuffer(SLOTS * 8)) {
    this.marks = new BigInt64Array(buffer);
    if (this.marks.length !== SLOTS) throw new RangeError(`expected ${SLOTS * 8} bytes`);
  }

  /** Records that `uri` was invalidated at `at`; a later mark already there stays. */
  mark(uri: string, at: number): void {
    const i = slotOf(uri);
    const next = BigInt(Math.trunc(at));
    let seen = Atomics.load(this.marks, i);
    while (seen < next) {
      const was = Atomics.compareExchange(this.marks, i, seen, next);
      if (was === seen) return;
      seen = was;
    }
  }

  /** Whether `uri` may have been invalidated at or after `since` (ms), by any worker. */
  changedSince(uri: string, since: number): boolean {
    return Number(Atomics.load(this.marks, slotOf(uri))) >= since;
  }
}

function slotOf(uri: string): number {
  return mixedHash(uri) & (SLOTS - 1);
}
