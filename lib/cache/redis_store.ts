/**
 * The shared cache: entries in Redis (one value per key, expiring with its
 * stale window), so that every instance serves what one of them stored; per
 * target URI, a set naming its keys and the time of its last invalidation, so
 * that a write on one instance drops them and keeps another from storing an
 * answer read before it. A failing Redis turns lookups into misses; it never
 * fails a request.
 */
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { RedisConnections } from "../store/redis.ts";
import type { RedisConfig } from "../store/schema.ts";
import { type CachedResponse, decodeEntry, encodeEntry } from "./entry.ts";
import type { Fill } from "./fills.ts";
import type { CacheStore } from "./store.ts";

const SCAN_BATCH = 500;

/**
 * How long an invalidation's time is kept per URI: a GET on another instance that began before
 * it and ends within this long is not stored. A longer one can still store its answer.
 */
const INVALIDATION_MARK_TTL_MS = 120_000;

/**
 * An entry, and its key in the set of its URI's keys (the set lives as long as its longest-lived
 * member); nothing when the URI was invalidated at or after the fill began.
 */
const STORE = "gatewayCacheStore";
const STORE_LUA = `
local invalidated = redis.call('GET', KEYS[3])
if invalidated and tonumber(invalidated) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
`;
/** Unlinks the keys in a URI's set and the set, and notes when (the latest time any instance said). */
const INVALIDATE = "gatewayCacheInvalidate";
const INVALIDATE_LUA = `
local keys = redis.call('SMEMBERS', KEYS[1])
table.insert(keys, KEYS[1])
for i = 1, #keys, 500 do redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys))) end
local before = redis.call('GET', KEYS[2])
if before and tonumber(before) > tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[2], ARGV[2])
else redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
`;

type Script = (...args: (string | number | Buffer)[]) => Promise<unknown>;

export class RedisCache implements CacheStore {
  private readonly prefix: string;
  private readonly indexPrefix: string;
  private readonly invalidatedPrefix: string;

  constructor(
    private readonly connections: RedisConnections,
    private readonly config: RedisConfig,
  ) {
    this.prefix = `${config.prefix}cache:`;
    this.indexPrefix = `${config.prefix}cache-uri:`;
    this.invalidatedPrefix = `${config.prefix}cache-invalidated:`;
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

  set(key: string, entry: CachedResponse, fill: Fill, now: number): void {
    const ttl = Math.ceil(entry.staleUntil - now);
    if (ttl <= 0) return;
    const bytes = encodeEntry(entry);
    const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    script(this.client, STORE, STORE_LUA, 3)(
      this.prefix + key,
      this.indexPrefix + fill.uri,
      this.invalidatedPrefix + fill.uri,
      value,
      ttl,
      fill.startedAt,
    ).catch((e: unknown) => this.connections.failed(this.config.url, e));
  }

  async invalidate(uri: string, now: number): Promise<void> {
    try {
      await script(this.client, INVALIDATE, INVALIDATE_LUA, 2)(
        this.indexPrefix + uri,
        this.invalidatedPrefix + uri,
        now,
        INVALIDATION_MARK_TTL_MS,
      );
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
function script(client: Redis, name: string, lua: string, numberOfKeys: number): Script {
  const commands = client as unknown as Record<string, Script>;
  if (typeof commands[name] !== "function") client.defineCommand(name, { numberOfKeys, lua });
  return commands[name]!.bind(client);
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
