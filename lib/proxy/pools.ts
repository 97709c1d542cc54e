/**
 * Connection pools outlive plans: a reload that keeps a target keeps its warm
 * connections. Plans take and give back references; a pool closes when no plan
 * uses its target any more.
 */
import { parseTarget, type PoolOptions, TargetPool } from "./http1/pool.ts";
import type { UpstreamError } from "./http1/errors.ts";
import type { Logger } from "../observe/logger.ts";

const SWEEP_EVERY_MS = 5_000;
/** A target that cannot be reached is logged once per this interval, not per request. */
const CONNECT_ERROR_LOG_MS = 10_000;

export class PoolRegistry {
  private readonly pools = new Map<string, { pool: TargetPool; refs: number }>();
  private timer: ReturnType<typeof setInterval> | null = null;

  /** Without a logger, failed connects are only counted as the requests' errors. */
  constructor(private readonly logger: Logger | null = null) {}

  acquire(url: string, options: PoolOptions): TargetPool {
    // Keep-alive settings are part of the key: two upstreams naming one target may each set
    // their own, and one pool with the last plan's settings would apply them to the other too.
    const key = `${parseTarget(url).url}#${options.maxIdle}/${options.idleTimeoutMs}` +
      (options.caCerts ? "#ca" : "");
    let entry = this.pools.get(key);
    if (entry) entry.pool.configure(options);
    else {
      entry = { pool: this.create(url, options), refs: 0 };
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

  private create(url: string, options: PoolOptions): TargetPool {
    const pool = new TargetPool(parseTarget(url), options);
    const logger = this.logger;
    // The answer is a bare 502 or 504: the log says why (refused, a certificate not trusted).
    if (logger !== null) {
      const target = pool.target.url;
      pool.onConnectError = (e: UpstreamError) =>
        logger.every(
          `upstream-connect:${target}`,
          CONNECT_ERROR_LOG_MS,
          "warn",
          "cannot connect to an upstream target",
          { target, kind: e.kind, error: e.message },
        );
    }
    return pool;
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
