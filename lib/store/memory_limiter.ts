/**
 * Limiter state in this isolate's memory, bounded so that a flood of distinct
 * keys (or of requests filling sliding logs) cannot exhaust it:
 *
 * - a state counts for nothing once it has expired (when the algorithm says it
 *   is back to empty: bucket full, window over), as a Redis key's TTL would
 *   drop it; its slot goes with its generation;
 * - at most `maxKeys` keys are held, in two generations: new and recently used
 *   keys go to the young map; when it holds half the cap it becomes the old map
 *   and the previous old map (keys not used for a whole generation) is dropped.
 *   That is least-recently-used eviction at the granularity of a generation,
 *   with one hash lookup per decision instead of reordering a list;
 * - the same rotation comes early once the young map's states hold half of
 *   `maxLogEntries` sliding-log times, so both maps hold at most that many.
 */
import type { Step } from "../ratelimit/algorithms/index.ts";
import type { LocalLimiterStore, MemoryStoreOptions, StoredLimit } from "./limiter_store.ts";
import { decideAtomically, type StateHome } from "./state_home.ts";

interface Entry {
  state: unknown;
  /** The state is empty from this instant on (ms). */
  expiresAt: number;
  /** Numbers the state holds, for `maxLogEntries` (its algorithm's `weight`; 0 if a few). */
  weight: number;
}

export const DEFAULT_MAX_KEYS = 100_000;

export class MemoryLimiterStore implements LocalLimiterStore, StateHome {
  private young = new Map<string, Entry>();
  private old = new Map<string, Entry>();
  private lastName: string | undefined;
  private lastEntry: Entry | undefined;
  private generationSize: number;
  /** Half of `maxLogEntries`: what the young map's states may weigh before it rotates. */
  private generationWeight: number;
  /** What the young map's states weigh. */
  private youngWeight = 0;
  /** Keys dropped to stay under the caps. */
  evicted = 0;

  constructor(options: MemoryStoreOptions = { maxKeys: DEFAULT_MAX_KEYS }) {
    this.generationSize = generationSize(options.maxKeys);
    this.generationWeight = (options.maxLogEntries ?? Infinity) / 2;
  }

  configure(options: MemoryStoreOptions): void {
    this.generationSize = generationSize(options.maxKeys);
    this.generationWeight = (options.maxLogEntries ?? Infinity) / 2;
    // A smaller log cap applies at once to the young map, to the old one when it goes.
    if (this.youngWeight >= this.generationWeight) this.rotate();
    // A smaller key cap: drop the least recently inserted keys until both generations fit.
    for (const map of [this.old, this.young]) {
      for (const [name, entry] of map) {
        if (map.size <= this.generationSize) break;
        map.delete(name);
        if (map === this.young) this.youngWeight -= entry.weight;
        this.evicted++;
      }
    }
  }

  /** Keys currently held (live or expired-but-not-yet-dropped). */
  get size(): number {
    return this.young.size + this.old.size;
  }

  /** Sliding-log times currently held, over both maps (a walk over every key). */
  get logEntries(): number {
    let n = 0;
    for (const map of [this.young, this.old]) for (const e of map.values()) n += e.weight;
    return n;
  }

  decide(limits: readonly StoredLimit[], keys: readonly string[], now: number): Step<unknown>[] {
    return decideAtomically(this, limits, keys, now);
  }

  read(name: string, _limit: StoredLimit, now: number): unknown {
    const entry = this.lookup(name);
    this.lastName = name;
    this.lastEntry = entry;
    return entry !== undefined && entry.expiresAt > now ? entry.state : undefined;
  }

  keep(name: string, limit: StoredLimit, step: Step<unknown>, now: number): void {
    // The entry `read` just found, unless another name was read since (several limits).
    const entry = name === this.lastName ? this.lastEntry : this.lookup(name);
    this.lastName = undefined;
    this.lastEntry = undefined;
    const weigh = limit.algorithm.weight;
    const weight = weigh === undefined ? 0 : weigh(step.state);
    if (entry !== undefined) {
      // A found entry is in the young map (`lookup` moves it there).
      entry.state = step.state;
      entry.expiresAt = now + step.resetMs;
      this.youngWeight += weight - entry.weight;
      entry.weight = weight;
      if (this.youngWeight >= this.generationWeight) this.rotate();
    } else {
      this.insert(name, { state: step.state, expiresAt: now + step.resetMs, weight });
    }
  }

  private lookup(name: string): Entry | undefined {
    const entry = this.young.get(name);
    if (entry !== undefined) return entry;
    const aging = this.old.get(name);
    if (aging !== undefined) {
      // Used again: it moves to the young generation, so it survives the next rotation.
      this.old.delete(name);
      this.insert(name, aging);
    }
    return aging;
  }

  private insert(name: string, entry: Entry): void {
    if (this.young.size >= this.generationSize) this.rotate();
    this.young.set(name, entry);
    this.youngWeight += entry.weight;
    if (this.youngWeight >= this.generationWeight) this.rotate();
  }

  private rotate(): void {
    this.evicted += this.old.size;
    this.old = this.young;
    this.young = new Map();
    this.youngWeight = 0;
    // The entry `read` found is in the old map now: `keep` looks it up again, which moves it back.
    this.lastName = undefined;
    this.lastEntry = undefined;
  }
}

function generationSize(maxKeys: number): number {
  return Math.max(1, Math.floor(maxKeys / 2));
}
