/**
 * The response caches of a running gateway (in `RuntimeDeps`, so they outlive
 * reloads): the one in-memory cache, and a Redis cache per store config that
 * some plan uses (plans take and give back references, so a purge reaches
 * exactly the Redis caches in service).
 */
import { connectionKey, type RedisConnections } from "../store/redis.ts";
import type { RedisConfig } from "../store/schema.ts";
import type { InvalidationMarks } from "./invalidation_marks.ts";
import { MemoryCache } from "./memory_store.ts";
import { PendingFills } from "./fills.ts";
import { RedisCache } from "./redis_store.ts";

const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

export class CacheStores {
  readonly memory: MemoryCache;
  /** GETs filling entries, whatever the plan: an invalidation after a reload still outdates them. */
  readonly fills: PendingFills;

  /** `marks`: the invalidations every worker of a cluster shares; null in one isolate. */
  constructor(marks: InvalidationMarks | null = null) {
    this.memory = new MemoryCache(DEFAULT_MEMORY_BYTES, marks);
    this.fills = new PendingFills(marks);
  }
  private readonly redisCaches = new Map<string, { cache: RedisCache; refs: number }>();

  acquireRedis(connections: RedisConnections, config: RedisConfig): RedisCache {
    // Per client, not only per prefix: a cache kept past a reload must not keep a released client.
    const key = `${connectionKey(config)}|${config.prefix}`;
    let slot = this.redisCaches.get(key);
    if (!slot) {
      this.redisCaches.set(key, slot = { cache: new RedisCache(connections, config), refs: 0 });
    }
    slot.refs++;
    return slot.cache;
  }

  releaseRedis(cache: RedisCache): void {
    for (const [key, slot] of this.redisCaches) {
      if (slot.cache === cache && --slot.refs <= 0) this.redisCaches.delete(key);
    }
  }

  /** Purges every cache; a Redis failure is thrown after the memory cache is purged. */
  async purge(pathPrefix: string): Promise<number> {
    this.fills.outdatePaths(pathPrefix);
    let n = await this.memory.purge(pathPrefix);
    for (const { cache } of this.redisCaches.values()) n += await cache.purge(pathPrefix);
    return n;
  }
}
