/**
 * The shared cache: entries in Redis (one value per key, expiring with its
 * stale window), so that every instance serves what one of them stored. A
 * failing Redis turns lookups into misses; it never fails a request.
 */
import { Buffer } from "node:buffer";
import type { RedisConnections } from "../store/redis.ts";
import type { RedisConfig } from "../store/schema.ts";
import { type CachedResponse, decodeEntry, encodeEntry } from "./entry.ts";
import type { CacheStore } from "./store.ts";

const SCAN_BATCH = 500;

export class RedisCache implements CacheStore {
  private readonly prefix: string;

  constructor(
    private readonly connections: RedisConnections,
    private readonly config: RedisConfig,
  ) {
    this.prefix = `${config.prefix}cache:`;
    // Connect at load, so the first requests do not find the client still connecting.
    connections.get(config);
  }

  private get client() {
    return this.connections.get(this.config);
  }

  async get(key: string, now: number): Promise<CachedResponse | null> {
    let raw: Buffer | null;
    try {
      raw = await this.client.getBuffer(this.prefix + key);
    } catch (e) {
      this.connections.failed(this.config.url, e);
      return null;
    }
    if (raw === null) return null;
    const entry = decodeEntry(raw);
    return entry !== null && now < entry.staleUntil ? entry : null;
  }

  set(key: string, entry: CachedResponse, now: number): void {
    const ttl = Math.ceil(entry.staleUntil - now);
    if (ttl <= 0) return;
    const bytes = encodeEntry(entry);
    const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    this.client.set(this.prefix + key, value, "PX", ttl).catch((e: unknown) =>
      this.connections.failed(this.config.url, e)
    );
  }

  /** Scans the keys under the path prefix and unlinks them; Redis errors are thrown. */
  async purge(pathPrefix: string): Promise<number> {
    const client = this.client;
    const match = globEscape(this.prefix + pathPrefix) + "*";
    let cursor = "0";
    let n = 0;
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", match, "COUNT", SCAN_BATCH);
      cursor = next;
      if (keys.length) n += await client.unlink(...keys);
    } while (cursor !== "0");
    return n;
  }
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
