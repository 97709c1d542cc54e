/**
 * `store.kind: memory` under `--workers N`: limits hold exactly as in one
 * isolate, whatever the worker count.
 *
 * - States that fit a fixed-size slot (every algorithm but `sliding_log`, keys
 *   of ordinary length) live in a `LimiterTable` every worker maps: a worker
 *   decides them itself, under the table's lock, with no message.
 * - A decision that involves any other state goes to the main thread, which
 *   holds those states in a `MemoryLimiterStore` and decides the whole request
 *   under the same lock, so that it stays all-or-nothing across both homes.
 *
 * A worker sends each limit to the main thread once as plain data (its
 * algorithm's spec) and then only its wire name; the main thread compiles each
 * limit once.
 */
import { compileAlgorithm, type Step, type Verdict } from "../ratelimit/algorithms/index.ts";
import {
  type LocalLimiterStore,
  type MemoryStoreOptions,
  type StoredLimit,
  StoreUnavailableError,
} from "../store/limiter_store.ts";
import { DEFAULT_MAX_KEYS, MemoryLimiterStore } from "../store/memory_limiter.ts";
import { decideAtomically, type StateHome, stateName } from "../store/state_home.ts";
import { LimiterTable, MAIN_OWNER, slotCountFor } from "./limiter_table.ts";
import type { RpcService, WorkerRpc } from "./rpc.ts";

export const LIMITER_SERVICE = "limiter";

/** The worker side: decides in the shared table when it can, else asks the main thread. */
export class WorkerLimiterStore implements LocalLimiterStore {
  private readonly wireNames = new WeakMap<StoredLimit, string>();

  /** `owner`: this worker's index + 1, written beside the table's lock while it holds it. */
  constructor(
    private readonly rpc: WorkerRpc,
    private table: LimiterTable | null,
    private readonly owner: number,
  ) {}

  /** The main thread replaced the table (a new `max_keys`). */
  useTable(table: LimiterTable): void {
    this.table = table;
  }

  configure(options: MemoryStoreOptions): void {
    // Every worker sends the same settings; the main thread applies the last.
    this.rpc.call(LIMITER_SERVICE, "configure", [options]).catch(() => {});
  }

  decide(
    limits: readonly StoredLimit[],
    keys: readonly string[],
    now: number,
  ): Verdict[] | Promise<Verdict[]> {
    const table = this.table;
    if (table !== null && allHeld(limits, keys)) {
      if (!table.lock(this.owner)) {
        throw new StoreUnavailableError("the shared rate-limit table stayed locked");
      }
      try {
        // A table the main thread has replaced is only read through it until the new one arrives.
        if (!table.moved) return decideAtomically(table, limits, keys, now);
      } finally {
        table.unlock();
      }
    }
    return this.ask(limits, keys, now);
  }

  private async ask(
    limits: readonly StoredLimit[],
    keys: readonly string[],
    now: number,
  ): Promise<Verdict[]> {
    const names = limits.map((l) => this.wireName(l));
    try {
      return await this.rpc.call(LIMITER_SERVICE, "decide", [names, keys, now]) as Verdict[];
    } catch (e) {
      throw new StoreUnavailableError("the main thread did not answer", { cause: e });
    }
  }

  /** A limit as plain data; the same limit gets the same name in every worker. */
  private wireName(l: StoredLimit): string {
    let name = this.wireNames.get(l);
    if (name === undefined) {
      name = JSON.stringify([l.id, l.algorithm.spec, l.cost, l.shadow]);
      this.wireNames.set(l, name);
    }
    return name;
  }
}

function allHeld(limits: readonly StoredLimit[], keys: readonly string[]): boolean {
  for (let i = 0; i < limits.length; i++) {
    if (!LimiterTable.holds(limits[i]!, stateName(limits[i]!, keys[i]!))) return false;
  }
  return true;
}

/** Limits compiled at most; past it the table starts over (it only grows with config changes). */
const MAX_COMPILED = 10_000;

/**
 * The main-thread side: owns the shared table (replacing it when `max_keys`
 * changes its size) and the states that do not fit it.
 */
export class SharedLimiterHost implements StateHome {
  private tableNow: LimiterTable;
  private readonly memory: MemoryLimiterStore;
  private readonly compiled = new Map<string, StoredLimit>();

  /** `onTable`: tells every worker of a replacement table. */
  constructor(
    private readonly onTable: (buffer: SharedArrayBuffer) => void,
    maxKeys = DEFAULT_MAX_KEYS,
    private readonly clock: () => number = Date.now,
  ) {
    this.tableNow = LimiterTable.create(maxKeys);
    this.memory = new MemoryLimiterStore({ maxKeys });
  }

  get table(): LimiterTable {
    return this.tableNow;
  }

  /** A worker died: if it held the table's lock, the others must not wait for it. */
  releaseIfHeldBy(owner: number): boolean {
    return this.tableNow.releaseIfHeldBy(owner);
  }

  service(): RpcService {
    return {
      configure: (options: MemoryStoreOptions) => this.configure(options),
      decide: (names: string[], keys: string[], now: number): Verdict[] =>
        this.decide(names.map((n) => this.limit(n)), keys, now).map((s) => ({
          allowed: s.allowed,
          remaining: s.remaining,
          resetMs: s.resetMs,
          retryAfterMs: s.retryAfterMs,
          delayMs: s.delayMs,
        })),
    };
  }

  decide(limits: readonly StoredLimit[], keys: readonly string[], now: number): Step<unknown>[] {
    const table = this.tableNow;
    if (!table.lock(MAIN_OWNER)) {
      throw new StoreUnavailableError("the shared rate-limit table stayed locked");
    }
    try {
      return decideAtomically(this, limits, keys, now);
    } finally {
      table.unlock();
    }
  }

  read(name: string, limit: StoredLimit, now: number): unknown {
    return this.homeOf(limit, name).read(name, limit, now);
  }

  keep(name: string, limit: StoredLimit, step: Step<unknown>, now: number): void {
    this.homeOf(limit, name).keep(name, limit, step, now);
  }

  private homeOf(limit: StoredLimit, name: string): StateHome {
    return LimiterTable.holds(limit, name) ? this.tableNow : this.memory;
  }

  /** Applies `max_keys`: a table of another size replaces this one, with its live states. */
  configure(options: MemoryStoreOptions): void {
    this.memory.configure(options);
    if (slotCountFor(options.maxKeys) === this.tableNow.slots) return;
    const old = this.tableNow;
    let next: LimiterTable;
    try {
      next = LimiterTable.create(options.maxKeys);
    } catch {
      return; // No memory for that many slots: the table keeps its size.
    }
    // Without the lock (a holder that died and was not freed) the states start over.
    const locked = old.lock(MAIN_OWNER);
    try {
      const now = this.clock();
      for (const [name, expiresAt, state] of old.live(now)) next.put(name, expiresAt, state, now);
      old.markMoved();
    } finally {
      if (locked) old.unlock();
    }
    this.tableNow = next;
    this.onTable(next.buffer);
  }

  private limit(name: string): StoredLimit {
    let l = this.compiled.get(name);
    if (l === undefined) {
      const [id, spec, cost, shadow] = JSON.parse(name);
      l = { id, algorithm: compileAlgorithm(spec), cost, shadow };
      if (this.compiled.size >= MAX_COMPILED) this.compiled.clear();
      this.compiled.set(name, l);
    }
    return l;
  }
}
