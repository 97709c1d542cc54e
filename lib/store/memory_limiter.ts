/**
 * Limiter state in this isolate's memory, bounded so that a flood of distinct
 * keys cannot exhaust it:
 *
 * - a state counts for nothing once it has expired (when the algorithm says it
 *   is back to empty: bucket full, window over), as a Redis key's TTL would
 *   drop it; its slot goes with its generation;
 * - at most `maxKeys` keys are held, in two generations: new and recently used
 *   keys go to the young map; when it holds half the cap it becomes the old map
 *   and the previous old map (keys not used for a whole generation) is dropped.
 *   That is least-recently-used eviction at the granularity of a generation,
 *   with one hash lookup per decision instead of reordering a list.
 */
import type { Step } from "../ratelimit/algorithms/index.ts";
import type { LocalLimiterStore, MemoryStoreOptions, StoredLimit } from "./limiter_store.ts";
import { decideAtomically, type StateHome } from "./state_home.ts";

interface Entry {
  state: unknown;
  /** The state is empty from this instant on (ms). */
  expiresAt: number;
}

export const DEFAULT_MAX_KEYS = 100_000;

export class MemoryLimiterStore implements LocalLimiterStore, StateHome {
  private young = new Map<string, Entry>();
  private old = new Map<string, Entry>();
  private lastName: string | undefined;
  private lastEntry: Entry | undefined;
  private generationSize: number;
  /** Keys dropped to stay under the cap, for metrics. */
  evicted = 0;

  constructor(options: MemoryStoreOptions = { maxKeys: DEFAULT_MAX_KEYS }) {
    this.generationSize = generationSize(options.maxKeys);
  }

  configure(options: MemoryStoreOptions): void {
    this.generationSize = generationSize(options.maxKeys);
    // A smaller cap: drop the least recently inserted keys until both generations fit.
    for (const map of [this.old, this.young]) {
      for (const name of map.keys()) {
        if (map.size <= this.generationSize) break;
        map.delete(name);
        this.evicted++;
      }
    }
  }

  /** Keys currently held (live or expired-but-not-yet-dropped). */
  get size(): number {
    return this.young.size + this.old.size;
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

  keep(name: string, _limit: StoredLimit, step: Step<unknown>, now: number): void {
    // The entry `read` just found, unless another name was read since (several limits).
    const entry = name === this.lastName ? this.lastEntry : this.lookup(name);
    this.lastName = undefined;
    this.lastEntry = undefined;
    if (entry !== undefined) {
      entry.state = step.state;
      entry.expiresAt = now + step.resetMs;
    } else {
      this.insert(name, { state: step.state, expiresAt: now + step.resetMs });
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
  }

  private rotate(): void {
    this.evicted += this.old.size;
    this.old = this.young;
    this.young = new Map();
  }
}

function generationSize(maxKeys: number): number {
  return Math.max(1, Math.floor(maxKeys / 2));
}
