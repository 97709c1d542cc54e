/**
 * Rate-limit states in a `SharedArrayBuffer` that every worker isolate maps,
 * so that a worker decides `store.kind: memory` limits itself, exactly, under
 * one lock, instead of asking the main thread (a message each way per batch,
 * which cost a loaded two-worker gateway a third of its throughput).
 *
 * Only what fits a fixed-size slot lives here: algorithms with a packed state
 * (every one but `sliding_log`) and names of at most `MAX_NAME` Latin-1
 * characters. The rest stays in the main thread's memory (`shared_limiter.ts`).
 *
 * Layout: a header of `HEADER_WORDS` int32 words, then `slots` slots of
 * `SLOT_BYTES`. A slot holds `expiresAt` and the packed state as float64, the
 * name's hash and length as int32, then the name, one byte per character.
 * A length of 0 marks a slot never used. Slots are found by linear probing
 * over a window of `PROBE` slots from the name's hash: a name is in the first
 * slot of its window that holds it, and a lookup stops at a never-used slot.
 * A new name takes the first never-used or expired slot of its window; if
 * every one is live, it takes the one that expires first, the state whose
 * loss costs least (the table is full: that is the eviction `max_keys` bounds).
 *
 * The lock is a futex-style mutex (0 free, 1 held, 2 held with waiters); the
 * holder writes its id beside it, so that the main thread can free a lock
 * whose holder died. Waiting is bounded: past `LOCK_WAIT_MS` the decision
 * fails as an unavailable store, and the route's `on_error` applies.
 */
import { MAX_PACKED_SIZE, type PackedState, type Step } from "../ratelimit/algorithms/index.ts";
import type { StoredLimit } from "../store/limiter_store.ts";
import type { StateHome } from "../store/state_home.ts";
import { mixedHash } from "../core/hash.ts";

const LOCK = 0;
const OWNER = 1;
/** Set when the main thread has replaced this table (a new size); holders then ask it instead. */
const MOVED = 2;
const SLOT_COUNT = 3;
/** The hash seed, random per table (see `hashName`). */
const SEED = 4;
const HEADER_WORDS = 16;
const HEADER_BYTES = HEADER_WORDS * 4;

const SLOT_BYTES = 128;
const SLOT_F64 = SLOT_BYTES / 8;
const SLOT_I32 = SLOT_BYTES / 4;
/** int32 offsets in a slot: after expiresAt and the state (float64). */
const HASH_I32 = (1 + MAX_PACKED_SIZE) * 2;
const LEN_I32 = HASH_I32 + 1;
const NAME_BYTE = (LEN_I32 + 1) * 4;
/** Longest name (limit id, NUL, key) a slot holds, in characters. */
export const MAX_NAME = SLOT_BYTES - NAME_BYTE;

const PROBE = 16;
export const LOCK_WAIT_MS = 100;
const SPINS = 64;

/** The owner id of the main thread; workers use their index + 1. */
export const MAIN_OWNER = -1;

export class LimiterTable implements StateHome {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  private readonly words: Int32Array;
  private readonly f64: Float64Array;
  private readonly bytes: Uint8Array;
  private readonly mask: number;
  private readonly seed: number;
  private lastName: string | undefined;
  private lastSlot = -1;

  /** A new empty table with room for `maxKeys` names at least. */
  static create(maxKeys: number): LimiterTable {
    const slots = slotCountFor(maxKeys);
    const buffer = new SharedArrayBuffer(HEADER_BYTES + slots * SLOT_BYTES);
    const header = new Int32Array(buffer);
    header[SLOT_COUNT] = slots;
    header[SEED] = crypto.getRandomValues(new Int32Array(1))[0]!;
    return new LimiterTable(buffer);
  }

  /** Maps a table another isolate created. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.words = new Int32Array(buffer);
    this.slots = this.words[SLOT_COUNT]!;
    this.mask = this.slots - 1;
    this.seed = this.words[SEED]!;
    this.f64 = new Float64Array(buffer, HEADER_BYTES);
    this.bytes = new Uint8Array(buffer, HEADER_BYTES);
  }

  /** Whether the states of `limit` under `name` (`stateName`) can live here. */
  static holds(limit: StoredLimit, name: string): boolean {
    return limit.algorithm.packed !== undefined && fits(name);
  }

  /** Takes the lock for `owner`; false if it stayed held past the wait bound. */
  lock(owner: number, clock: () => number = monotonic): boolean {
    const w = this.words;
    let c = Atomics.compareExchange(w, LOCK, 0, 1);
    for (let i = 0; c !== 0 && i < SPINS; i++) c = Atomics.compareExchange(w, LOCK, 0, 1);
    if (c !== 0) {
      const deadline = clock() + LOCK_WAIT_MS;
      if (c !== 2) c = Atomics.exchange(w, LOCK, 2);
      while (c !== 0) {
        if (clock() >= deadline) return false;
        Atomics.wait(w, LOCK, 2, 1);
        c = Atomics.exchange(w, LOCK, 2);
      }
    }
    w[OWNER] = owner;
    return true;
  }

  unlock(): void {
    this.words[OWNER] = 0;
    this.lastName = undefined;
    if (Atomics.exchange(this.words, LOCK, 0) === 2) Atomics.notify(this.words, LOCK, 1);
  }

  /** Frees the lock if `owner` holds it (the main thread, when a worker died holding it). */
  releaseIfHeldBy(owner: number): boolean {
    if (Atomics.compareExchange(this.words, OWNER, owner, 0) !== owner) return false;
    Atomics.store(this.words, LOCK, 0);
    Atomics.notify(this.words, LOCK);
    return true;
  }

  /** Whether the main thread has replaced this table; read under the lock. */
  get moved(): boolean {
    return Atomics.load(this.words, MOVED) === 1;
  }

  markMoved(): void {
    Atomics.store(this.words, MOVED, 1);
  }

  // The two StateHome methods run under the lock, with `LimiterTable.holds` true.

  read(name: string, limit: StoredLimit, now: number): unknown {
    const slot = this.find(name, hashName(name, this.seed));
    this.lastName = name;
    this.lastSlot = slot;
    if (slot < 0 || this.f64[slot * SLOT_F64]! <= now) return undefined;
    return (limit.algorithm.packed as PackedState<unknown>).read(this.f64, slot * SLOT_F64 + 1);
  }

  keep(name: string, limit: StoredLimit, step: Step<unknown>, now: number): void {
    const slot = name === this.lastName && this.lastSlot >= 0
      ? this.lastSlot
      : this.slotOf(name, now);
    this.lastName = undefined;
    const at = slot * SLOT_F64;
    this.f64[at] = now + step.resetMs;
    (limit.algorithm.packed as PackedState<unknown>).write(step.state, this.f64, at + 1);
  }

  /** Every live state, as (name, expiresAt, the slot's numbers): for copying into a new table. */
  *live(now: number): Generator<[string, number, Float64Array]> {
    for (let s = 0; s < this.slots; s++) {
      const len = this.words[HEADER_WORDS + s * SLOT_I32 + LEN_I32]!;
      const expiresAt = this.f64[s * SLOT_F64]!;
      if (len === 0 || expiresAt <= now) continue;
      const from = s * SLOT_BYTES + NAME_BYTE;
      const name = String.fromCharCode(...this.bytes.subarray(from, from + len));
      const at = s * SLOT_F64 + 1;
      yield [name, expiresAt, this.f64.slice(at, at + MAX_PACKED_SIZE)];
    }
  }

  /** Puts a state copied from another table (under the lock). */
  put(name: string, expiresAt: number, state: Float64Array, now: number): void {
    const slot = this.slotOf(name, now);
    this.f64[slot * SLOT_F64] = expiresAt;
    this.f64.set(state, slot * SLOT_F64 + 1);
  }

  /** The slot holding `name`, or the one it is given. */
  private slotOf(name: string, now: number): number {
    const hash = hashName(name, this.seed);
    const slot = this.find(name, hash);
    return slot >= 0 ? slot : this.claim(name, hash, now);
  }

  private find(name: string, hash: number): number {
    const w = this.words;
    for (let p = 0; p < PROBE; p++) {
      const s = (hash + p) & this.mask;
      const base = HEADER_WORDS + s * SLOT_I32;
      const len = w[base + LEN_I32]!;
      if (len === 0) return -1;
      if (len === name.length && w[base + HASH_I32] === hash && this.nameAt(s, name)) return s;
    }
    return -1;
  }

  private nameAt(slot: number, name: string): boolean {
    const b = this.bytes;
    const from = slot * SLOT_BYTES + NAME_BYTE;
    for (let i = 0; i < name.length; i++) if (b[from + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  /** A slot for a name not in the table: a free one of its window, or the one expiring first. */
  private claim(name: string, hash: number, now: number): number {
    let victim = -1;
    let victimExpiry = Infinity;
    for (let p = 0; p < PROBE; p++) {
      const s = (hash + p) & this.mask;
      const expiresAt = this.f64[s * SLOT_F64]!;
      if (this.words[HEADER_WORDS + s * SLOT_I32 + LEN_I32] === 0 || expiresAt <= now) {
        victim = s;
        break;
      }
      if (expiresAt < victimExpiry) {
        victim = s;
        victimExpiry = expiresAt;
      }
    }
    const base = HEADER_WORDS + victim * SLOT_I32;
    this.words[base + HASH_I32] = hash;
    this.words[base + LEN_I32] = name.length;
    const from = victim * SLOT_BYTES + NAME_BYTE;
    for (let i = 0; i < name.length; i++) this.bytes[from + i] = name.charCodeAt(i);
    return victim;
  }
}

/** Whether a slot can hold `name`: at most MAX_NAME characters, each one byte. */
function fits(name: string): boolean {
  if (name.length > MAX_NAME) return false;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * FNV-1a from the table's random seed, then murmur3's finalizer so that the
 * low bits (the slot) depend on all of them, as a non-negative int32. Keys come
 * from clients: with a known hash, names crafted to share one probe window
 * could push a chosen state out; without the seed, that takes a flood of the
 * whole table, as it does for the single-isolate store.
 */
function hashName(name: string, seed: number): number {
  return mixedHash(name, seed) >>> 1;
}

/** The power of two at or above `maxKeys` (at least one probe window). */
export function slotCountFor(maxKeys: number): number {
  let n = PROBE;
  while (n < maxKeys) n *= 2;
  return n;
}

const monotonic = (): number => performance.now();
