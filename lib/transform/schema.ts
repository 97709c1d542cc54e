import { z } from "zod";
import { headerName, httpMethod, positiveInt } from "../config/common.ts";

export const headerRulesSchema = z.strictObject({
  set: z.record(headerName, z.string()).optional(),
  add: z.record(headerName, z.string()).optional(),
  remove: z.array(headerName).optional(),
  rename: z.record(headerName, headerName).optional(),
});

const fieldPath = z.string().regex(/^[^.\[\]]+(\[\])?(\.[^.\[\]]+(\[\])?)*$/, {
  error: "expected a dotted field path such as user.id or items[].internal_id",
});

export const jsonRulesSchema = z.strictObject({
  remove: z.array(fieldPath).optional(),
  rename: z.record(fieldPath, z.string().min(1)).optional(),
  keep: z.array(fieldPath).optional(),
});

const directionSchema = z.strictObject({
  headers: headerRulesSchema.optional(),
  json: jsonRulesSchema.optional(),
  max_body_bytes: positiveInt.default(1_048_576),
  on_oversize: z.enum(["pass", "reject"]).default("pass"),
});

export const transformSchema = z.strictObject({
  request: directionSchema.optional(),
  response: directionSchema.optional(),
  security_headers: z.boolean().default(false),
});

export const corsSchema = z.strictObject({
  origins: z.array(z.string().min(1)).min(1),
  methods: z.array(httpMethod).default(["GET", "HEAD", "POST"]),
  headers: z.array(headerName).default([]),
  expose_headers: z.array(headerName).default([]),
  credentials: z.boolean().default(false),
  max_age_s: z.number().int().min(0).default(600),
}).superRefine((c, ctx) => {
  if (c.credentials && c.origins.includes("*")) {
    ctx.addIssue({
      code: "custom",
      path: ["credentials"],
      message: "credentials: true cannot be combined with origin *; list the origins",
    });
  }
});

export const cacheSchema = z.strictObject({
  ttl_s: z.number().positive(),
  vary: z.array(headerName).default([]),
  normalize_query: z.boolean().default(true),
  stale_if_error_s: z.number().min(0).default(0),
  max_body_bytes: positiveInt.default(1_048_576),
});

export const aggregateSchema = z.strictObject({
  calls: z.array(z.strictObject({
    key: z.string().min(1),
    upstream: z.string().min(1),
    path: z.string().startsWith("/"),
    method: httpMethod.default("GET"),
    timeout_ms: positiveInt.default(2000),
  })).min(1),
  on_error: z.enum(["fail", "partial"]).default("partial"),
});

export type TransformConfig = z.output<typeof transformSchema>;
export type CorsConfig = z.output<typeof corsSchema>;
export type CacheConfig = z.output<typeof cacheSchema>;
export type AggregateConfig = z.output<typeof aggregateSchema>;
