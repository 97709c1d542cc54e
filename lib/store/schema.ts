import { z } from "zod";
import { positiveInt, timerMs } from "../config/common.ts";

const redisUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === "redis:" || u.protocol === "rediss:";
  } catch {
    return false;
  }
}, { error: "expected a redis:// or rediss:// URL" });

export const redisSchema = z.strictObject({
  url: redisUrl.default("redis://127.0.0.1:6379"),
  prefix: z.string().default("gw:"),
  on_error: z.enum(["allow", "deny"]).default("allow").meta({
    description: "When Redis fails: let requests through (allow) or refuse them with 503 (deny)",
  }),
  timeout_ms: timerMs.default(200).meta({ description: "Per-command timeout" }),
  connect_timeout_ms: timerMs.default(1000),
});

export const memoryStoreSchema = z.strictObject({
  max_keys: positiveInt.default(100_000).meta({
    description: "Cap on rate-limit keys held in memory; past it the least recently used go " +
      "(with --workers N, the state nearest to expiring)",
  }),
  log_max_bytes: positiveInt.min(1_048_576).default(67_108_864).meta({
    description: "Cap on the sliding-log times held in memory, over every key, at 8 bytes a " +
      "time (at least 1 MiB: a full log of the largest limit fits in half); past it the least " +
      "recently used keys go",
  }),
  cache_max_bytes: positiveInt.default(67_108_864).meta({
    description: "Cap on the bytes of cached responses held in memory (least recently used go)",
  }),
});

export const storeSchema = z.strictObject({
  kind: z.enum(["memory", "redis"]).default("memory"),
  redis: redisSchema.optional(),
  memory: memoryStoreSchema.default(memoryStoreSchema.parse({})),
}).transform((s, ctx) => {
  if (s.kind === "redis" && !s.redis) {
    // Defaults apply when `kind: redis` is given alone.
    return { ...s, redis: redisSchema.parse({}) };
  }
  void ctx;
  return s;
});

export type StoreConfig = z.output<typeof storeSchema>;
export type RedisConfig = z.output<typeof redisSchema>;
