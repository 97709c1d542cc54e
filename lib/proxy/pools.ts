/**
 * Connection pools outlive plans: a reload that keeps a target keeps its warm
 * connections. Plans take and give back references; a pool closes when no plan
 * uses its target any more.
 */
import { parseTarget, type PoolOptions, TargetPool } from "./http1/pool.ts";

const SWEEP_EVERY_MS = 5_000;

export class PoolRegistry {
  private readonly pools = new Map<string, { pool: TargetPool; refs: number }>();
  private timer: ReturnType<typeof setInterval> | null = null;

  acquire(url: string, options: PoolOptions): TargetPool {
    const key = parseTarget(url).url + (options.caCerts ? "#ca" : "");
    let entry = this.pools.get(key);
    if (entry) entry.pool.configure(options);
    else {
      entry = { pool: new TargetPool(parseTarget(url), options), refs: 0 };
      this.pools.set(key, entry);
    }
    entry.refs++;
    this.startSweeper();
    return entry.pool;
  }

  release(pool: TargetPool): void {
    for (const [key, entry] of this.pools) {
      if (entry.pool !== pool) continue;
      if (--entry.refs <= 0) {
        entry.pool.close();
        this.pools.delete(key);
      }
      break;
    }
    if (this.pools.size === 0) this.stopSweeper();
  }

  closeAll(): void {
    for (const { pool } of this.pools.values()) pool.close();
    this.pools.clear();
    this.stopSweeper();
  }

  private startSweeper(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const { pool } of this.pools.values()) pool.sweep(now);
    }, SWEEP_EVERY_MS);
    Deno.unrefTimer(this.timer as unknown as number);
  }

  private stopSweeper(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
