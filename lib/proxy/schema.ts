import { z } from "zod";
import { editableHeader, httpUrl, positiveInt, timerMs } from "../config/common.ts";
import {
  circuitBreakerSchema,
  healthCheckSchema,
  outlierSchema,
  retriesSchema,
  timeoutSchema,
} from "../resilience/schema.ts";

export const targetSchema = z.strictObject({
  url: httpUrl.refine((s) => {
    if (!URL.canParse(s)) return true; // reported by httpUrl
    const u = new URL(s);
    return (u.pathname === "/" || u.pathname === "") && !u.search && !u.hash;
  }, { error: "expected a target URL without a path, query or fragment (scheme, host, port)" })
    .refine((s) => {
      if (!URL.canParse(s)) return true;
      const u = new URL(s);
      return u.username === "" && u.password === "";
    }, {
      // They were never sent, and the URL is the target's name in metrics, logs and the admin API.
      error:
        "expected a target URL without credentials: they are not sent upstream; set the Authorization header in the upstream's headers",
    }),
  weight: z.number().int().min(0).max(1000).default(1),
});

const hashKey = z.string().regex(/^(consumer|ip|ip\/64|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/, {
  error: "expected consumer, ip, ip/64 or header:NAME",
});

export const upstreamSchema = z.strictObject({
  targets: z.array(targetSchema).min(1),
  balance: z.enum(["round_robin", "least_conn", "random", "hash"]).default("round_robin"),
  hash_on: hashKey.default("ip").meta({ description: "Key for balance: hash" }),
  timeout: timeoutSchema.default({}),
  retries: retriesSchema.optional(),
  circuit_breaker: circuitBreakerSchema.optional(),
  max_concurrent: positiveInt.optional().meta({
    description: "Bulkhead: requests in flight to this upstream at once",
  }),
  queue: z.number().int().min(0).default(0).meta({
    description: "Requests that may wait for a bulkhead slot",
  }),
  queue_timeout_ms: timerMs.default(1000),
  health_check: healthCheckSchema.optional(),
  outlier_detection: outlierSchema.optional(),
  preserve_host: z.boolean().default(false),
  keepalive: z.strictObject({
    max_idle: positiveInt.default(128).meta({ description: "Idle connections kept per target" }),
    idle_timeout_s: z.number().positive().default(60),
  }).default({ max_idle: 128, idle_timeout_s: 60 }),
  headers: z.record(editableHeader, z.string()).default({}).meta({
    description: "Headers set on every request to this upstream",
  }),
}).refine((u) => u.queue === 0 || u.max_concurrent !== undefined, {
  path: ["queue"],
  error: "queue needs max_concurrent: requests wait there for a bulkhead slot",
});

export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
