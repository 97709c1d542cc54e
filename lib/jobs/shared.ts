/** The plan-wide job store, on the shared Redis client of `store.redis`. */
import type { BuildContext } from "../plan/build_context.ts";
import type { RedisConfig } from "../store/schema.ts";
import { whenReady } from "../store/redis.ts";
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
    await whenReady(client, redis.connect_timeout_ms);
    return { store: new JobStore(client, redis.prefix), redis };
  });
}
