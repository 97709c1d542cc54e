import { z } from "zod";
import { duration, oneOrMany, positiveInt } from "../config/common.ts";

const limitKey = z.string().regex(/^(consumer|ip|route|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/, {
  error: "expected consumer, ip, route or header:NAME",
});

const common = {
  key: oneOrMany(limitKey).default(["ip"]),
  cost: positiveInt.default(1),
  shadow: z.boolean().default(false).meta({
    description: "Observe and count refusals without enforcing them",
  }),
  headers: z.enum(["ietf", "ietf_and_x", "none"]).default("ietf"),
  id: z.string().min(1).optional().meta({
    description: "Stable id that namespaces this limit's counters (defaults from route + index)",
  }),
};

export const tokenBucketSchema = z.strictObject({
  algorithm: z.literal("token_bucket"),
  rate: z.number().positive(),
  per: duration,
  burst: positiveInt.optional().meta({ description: "Bucket capacity; defaults to rate" }),
  ...common,
});

export const leakyBucketSchema = z.discriminatedUnion("mode", [
  z.strictObject({
    algorithm: z.literal("leaky_bucket"),
    mode: z.literal("police"),
    rate: z.number().positive(),
    per: duration,
    burst: positiveInt.optional(),
    ...common,
  }),
  z.strictObject({
    algorithm: z.literal("leaky_bucket"),
    mode: z.literal("shape"),
    rate: z.number().positive(),
    per: duration,
    queue: z.number().int().min(0).default(100),
    ...common,
  }),
]);

const windowFields = {
  limit: positiveInt,
  per: duration,
  ...common,
};

export const rateLimitSchema = z.discriminatedUnion("algorithm", [
  tokenBucketSchema,
  leakyBucketSchema,
  z.strictObject({ algorithm: z.literal("sliding_window"), ...windowFields }),
  z.strictObject({ algorithm: z.literal("fixed_window"), ...windowFields }),
  z.strictObject({ algorithm: z.literal("sliding_log"), ...windowFields }),
]);

export const rateLimitsSchema = oneOrMany(rateLimitSchema);

export const quotaSchema = z.strictObject({
  requests: positiveInt,
  per: z.enum(["day", "month"]),
  key: oneOrMany(limitKey).default(["consumer"]),
});

export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type QuotaConfig = z.output<typeof quotaSchema>;
