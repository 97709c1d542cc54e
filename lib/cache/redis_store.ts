/**
 * The shared cache: entries in Redis (one value per key, expiring with its
 * stale window), so that every instance serves what one of them stored. A
 * failing Redis turns lookups into misses; it never fails a request.
 */
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { RedisConnections } from "../store/redis.ts";
import type { RedisConfig } from "../store/schema.ts";
import { type CachedResponse, decodeEntry, encodeEntry } from "./entry.ts";
import { uriOf } from "./key.ts";
import type { CacheStore } from "./store.ts";

const SCAN_BATCH = 500;

/**
 * An entry with Vary values or a caller in its key, and its key in the set of its URI's
 * keys; the set lives as long as its longest-lived member.
 */
const SET_INDEXED = "gatewayCacheSetIndexed";
const SET_INDEXED_LUA = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
`;
/** Unlinks a URI's key, the keys in its set, and the set. */
const INVALIDATE = "gatewayCacheInvalidate";
const INVALIDATE_LUA = `
local keys = redis.call('SMEMBERS', KEYS[2])
table.insert(keys, KEYS[1])
table.insert(keys, KEYS[2])
for i = 1, #keys, 500 do redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys))) end
`;

type Script = (...args: (string | number | Buffer)[]) => Promise<unknown>;

export class RedisCache implements CacheStore {
  private readonly prefix: string;
  private readonly indexPrefix: string;

  constructor(
    private readonly connections: RedisConnections,
    private readonly config: RedisConfig,
  ) {
    this.prefix = `${config.prefix}cache:`;
    this.indexPrefix = `${config.prefix}cache-uri:`;
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
    const uri = uriOf(key);
    const client = this.client;
    const stored = uri === key
      ? client.set(this.prefix + key, value, "PX", ttl)
      : script(client, SET_INDEXED, SET_INDEXED_LUA)(
        this.prefix + key,
        this.indexPrefix + uri,
        value,
        ttl,
      );
    stored.catch((e: unknown) => this.connections.failed(this.config.url, e));
  }

  async invalidate(uri: string): Promise<void> {
    const client = this.client;
    try {
      await script(client, INVALIDATE, INVALIDATE_LUA)(this.prefix + uri, this.indexPrefix + uri);
    } catch (e) {
      this.connections.failed(this.config.url, e);
    }
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

/** A script as a command of the shared client, defined once (EVALSHA, EVAL after NOSCRIPT). */
function script(client: Redis, name: string, lua: string): Script {
  const commands = client as unknown as Record<string, Script>;
  if (typeof commands[name] !== "function") client.defineCommand(name, { numberOfKeys: 2, lua });
  return commands[name]!.bind(client);
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
