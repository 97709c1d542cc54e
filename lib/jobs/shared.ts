/** The plan-wide job store, on the shared Redis client of `store.redis`. */
import type { BuildContext } from "../plan/build_context.ts";
import type { RedisConfig } from "../store/schema.ts";
import type { Redis } from "../store/redis.ts";
import { JobStore } from "./store.ts";

export interface SharedJobStore {
  store: JobStore;
  redis: RedisConfig;
}

export function sharedJobStore(b: BuildContext): Promise<SharedJobStore> {
  return b.shared("jobs:store", async () => {
    // Semantic checks guarantee a redis store whenever a route is async.
    const redis = b.config.store.redis!;
    const client = b.deps.redis.get(redis);
    await connected(client, redis.connect_timeout_ms);
    return { store: new JobStore(client, redis.prefix), redis };
  });
}

/**
 * Waits for a fresh client's first connection, so that requests right after
 * start are not refused while it is still being made. Never fails: with Redis
 * down the gateway starts anyway and async routes answer 503 until it is back.
 */
function connected(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status !== "connecting" && client.status !== "connect" && client.status !== "wait") {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off("ready", done);
      client.off("end", done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.once("ready", done);
    client.once("end", done);
  });
}
