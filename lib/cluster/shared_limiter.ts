/**
 * `store.kind: memory` under `--workers N`: every rate-limit decision is made
 * by one `MemoryLimiterStore` in the main thread, so limits hold exactly as in
 * one isolate. A worker sends each limit once as plain data (its algorithm's
 * spec) and then only its wire name; the main thread compiles each limit once.
 */
import { compileAlgorithm, type Verdict } from "../ratelimit/algorithms/index.ts";
import {
  type LocalLimiterStore,
  type MemoryStoreOptions,
  type StoredLimit,
  StoreUnavailableError,
} from "../store/limiter_store.ts";
import { MemoryLimiterStore } from "../store/memory_limiter.ts";
import type { RpcService, WorkerRpc } from "./rpc.ts";

export const LIMITER_SERVICE = "limiter";

/** The worker side: a `LocalLimiterStore` whose decisions cross to the main thread. */
export class WorkerLimiterStore implements LocalLimiterStore {
  private readonly wireNames = new WeakMap<StoredLimit, string>();

  constructor(private readonly rpc: WorkerRpc) {}

  configure(options: MemoryStoreOptions): void {
    // Every worker sends the same settings; the main thread applies the last.
    this.rpc.call(LIMITER_SERVICE, "configure", [options]).catch(() => {});
  }

  async decide(
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

/** Limits compiled at most; past it the table starts over (it only grows with config changes). */
const MAX_COMPILED = 10_000;

/** The main-thread side: the one store every worker's decisions go to. */
export function limiterService(store = new MemoryLimiterStore()): RpcService {
  const compiled = new Map<string, StoredLimit>();
  const limit = (name: string): StoredLimit => {
    let l = compiled.get(name);
    if (l === undefined) {
      const [id, spec, cost, shadow] = JSON.parse(name);
      l = { id, algorithm: compileAlgorithm(spec), cost, shadow };
      if (compiled.size >= MAX_COMPILED) compiled.clear();
      compiled.set(name, l);
    }
    return l;
  };
  return {
    configure: (options: MemoryStoreOptions) => store.configure(options),
    decide: (names: string[], keys: string[], now: number): Verdict[] =>
      store.decide(names.map(limit), keys, now).map((s) => ({
        allowed: s.allowed,
        remaining: s.remaining,
        resetMs: s.resetMs,
        retryAfterMs: s.retryAfterMs,
        delayMs: s.delayMs,
      })),
  };
}
