/**
 * Redis connections shared by every plan and policy that talks to the store.
 * They outlive reloads (keyed by URL), fail fast instead of queueing when Redis
 * is down, and reconnect by themselves with capped backoff.
 *
 * The client library is loaded by `loadRedisClient()`, which plan builds call
 * when the config has a `store.redis` section: a gateway without Redis does not
 * carry ioredis and the Node modules it pulls in (about 13 MB of RSS).
 */
import type { Redis } from "ioredis";
import type { RedisConfig } from "./schema.ts";
import type { Logger } from "../observe/logger.ts";

export type { Redis };

let RedisClient: typeof Redis | null = null;

/** Loads the Redis client library; `RedisConnections.get()` needs it loaded. */
export async function loadRedisClient(): Promise<void> {
  RedisClient ??= (await import("ioredis")).Redis;
}

export class RedisConnections {
  private readonly clients = new Map<string, Redis>();
  /** Plans using each client: a reload that changes the settings must not keep the old one. */
  private readonly holders = new Map<string, number>();
  /** Commands that failed (timeouts, connection errors); read by metrics. */
  errors = 0;

  constructor(private readonly logger: Logger) {}

  private logError(fields: Record<string, unknown>): void {
    this.logger.every("redis-error", 10_000, "warn", "redis unavailable", fields);
  }

  /** The shared client for this URL, created on first use. */
  get(c: RedisConfig): Redis {
    const key = connectionKey(c);
    let client = this.clients.get(key);
    if (!client) {
      if (RedisClient === null) throw new Error("loadRedisClient() must complete before get()");
      client = new RedisClient(c.url, {
        commandTimeout: c.timeout_ms,
        connectTimeout: c.connect_timeout_ms,
        // Fail fast while disconnected: callers apply `on_error` instead of waiting.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
        lazyConnect: false,
      });
      client.on("error", (e: Error) => {
        this.errors++;
        this.logError({ url: redactUrl(c.url), error: e.message });
      });
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * Marks the client for `c` as used by a plan until the returned release is
   * called; the last release disconnects it (its plan is disposed, nothing runs on it).
   */
  hold(c: RedisConfig): () => void {
    const key = connectionKey(c);
    this.holders.set(key, (this.holders.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.holders.get(key)! - 1;
      if (left > 0) return void this.holders.set(key, left);
      this.holders.delete(key);
      this.clients.get(key)?.disconnect();
      this.clients.delete(key);
    };
  }

  /** Counts a failed command and logs it at most once per interval. */
  failed(url: string, e: unknown): void {
    this.errors++;
    this.logError({ url: redactUrl(url), error: (e as Error)?.message ?? String(e) });
  }

  closeAll(): void {
    for (const c of this.clients.values()) c.disconnect();
    this.clients.clear();
    this.holders.clear();
  }
}

/** Settings that make a different client: commands time out by the client's own settings. */
export function connectionKey(c: RedisConfig): string {
  return `${c.url}|${c.timeout_ms}|${c.connect_timeout_ms}`;
}

/**
 * Waits until the client is connected, at most `timeoutMs`; false if it was not.
 * Without an offline queue, commands sent before the connection is up fail at
 * once: a plan waits for it at build, so that the first requests after a start
 * are limited, queued or authenticated as configured rather than refused. It
 * never fails: with Redis down the gateway starts, and what needs Redis follows
 * its `on_error`.
 */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  if (client.status === "end") return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off("ready", onReady);
      client.off("end", onEnd);
      resolve(ok);
    };
    const onReady = () => done(true);
    const onEnd = () => done(false);
    const timer = setTimeout(onEnd, timeoutMs);
    client.once("ready", onReady);
    client.once("end", onEnd);
  });
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "redis";
  }
}
