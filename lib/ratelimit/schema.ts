/**
 * Configuration of rate limits (`rate_limit`: one limit or a list, on a route,
 * a plan or `defaults`) and quotas (`quota`: requests per calendar day or month).
 */
import { z } from "zod";
import { duration, nonNegativeInt, oneOrMany, positiveInt } from "../config/common.ts";

/** A sliding log keeps one timestamp per admitted request: cap its memory. */
export const SLIDING_LOG_MAX_LIMIT = 10_000;

const limitKey = z.string().regex(
  /^(consumer|ip|ip\/64|route|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/,
  {
    error: "expected consumer, ip, ip/64, route or header:NAME",
  },
);

const wholeMs = duration.refine(Number.isInteger, { error: "expected whole milliseconds" });

const common = {
  key: oneOrMany(limitKey).optional().meta({
    description:
      "What is counted separately: consumer, ip, ip/64 (IPv6 by /64), route, header:NAME, or a list " +
      "of them combined. Defaults to ip (consumer in plans). A request without the key " +
      "(no consumer, no such header or an empty one) is counted by its client IP",
  }),
  cost: positiveInt.default(1).meta({ description: "Units one request consumes" }),
  shadow: z.boolean().default(false).meta({
    description: "Observe and count refusals without enforcing them",
  }),
  headers: z.enum(["ietf", "ietf_and_x", "none"]).default("ietf").meta({
    description: "Headers on admitted responses: RateLimit-*, also X-RateLimit-*, or none " +
      "(a refusal always carries RateLimit-* and Retry-After)",
  }),
  id: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/, {
    error: "expected an id of letters, digits and _ . : -",
  }).optional().meta({
    description: "Stable id of the limit's counters (default: from where it is declared); " +
      "limits with the same id share counters",
  }),
};

const tokenBucketSchema = z.strictObject({
  algorithm: z.literal("token_bucket"),
  rate: z.number().positive().meta({ description: "Tokens added per `per`" }),
  per: wholeMs,
  burst: positiveInt.optional().meta({
    description: "Bucket capacity: requests that may pass at once (default: rate, rounded up)",
  }),
  ...common,
});

const leakyBucketSchema = z.strictObject({
  algorithm: z.literal("leaky_bucket"),
  mode: z.enum(["police", "shape"]).meta({
    description: "police: refuse what overflows the meter; shape: queue requests and release " +
      "them at the rate, refusing only what overflows the queue",
  }),
  rate: z.number().positive().meta({ description: "Requests drained per `per`" }),
  per: wholeMs,
  burst: positiveInt.optional().meta({
    description: "mode police: the meter's capacity (default: rate, rounded up)",
  }),
  queue: nonNegativeInt.optional().meta({
    description: "mode shape: requests that may wait (default 100)",
  }),
  ...common,
}).superRefine((l, ctx) => {
  if (l.mode === "shape" && l.burst !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["burst"],
      message: "burst is for mode: police; a shaping bucket takes queue",
    });
  }
  if (l.mode === "police" && l.queue !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["queue"],
      message: "queue is for mode: shape; a policing bucket takes burst",
    });
  }
});

const windowFields = {
  limit: positiveInt.meta({ description: "Units admitted per window" }),
  per: wholeMs,
  ...common,
};

export const rateLimitSchema = z.discriminatedUnion("algorithm", [
  tokenBucketSchema,
  leakyBucketSchema,
  z.strictObject({ algorithm: z.literal("sliding_window"), ...windowFields }),
  z.strictObject({ algorithm: z.literal("fixed_window"), ...windowFields }),
  z.strictObject({
    algorithm: z.literal("sliding_log"),
    ...windowFields,
    limit: positiveInt.refine((n) => n <= SLIDING_LOG_MAX_LIMIT, {
      error: `expected at most ${SLIDING_LOG_MAX_LIMIT} (a sliding log keeps every request's ` +
        "time; use sliding_window for larger limits)",
    }),
  }),
]).superRefine((l, ctx) => {
  const most = capacityOf(l);
  if (l.cost > most) {
    ctx.addIssue({
      code: "custom",
      path: ["cost"],
      message: `expected a cost of at most ${most}: no request could ever pass this limit`,
    });
  }
});

export const rateLimitsSchema = oneOrMany(rateLimitSchema);

export const quotaSchema = z.strictObject({
  requests: positiveInt.meta({ description: "Units admitted per calendar period" }),
  per: z.enum(["day", "month"]).meta({ description: "Calendar day or month, in UTC" }),
  ...common,
}).superRefine((q, ctx) => {
  if (q.cost > q.requests) {
    ctx.addIssue({
      code: "custom",
      path: ["cost"],
      message: `expected a cost of at most ${q.requests}: no request could ever pass this quota`,
    });
  }
});

export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type QuotaConfig = z.output<typeof quotaSchema>;

/** Most units a limit admits at once: its burst, queue or window limit. */
export function capacityOf(l: RateLimitConfig): number {
  switch (l.algorithm) {
    case "token_bucket":
      return l.burst ?? Math.ceil(l.rate);
    case "leaky_bucket":
      return l.mode === "shape" ? (l.queue ?? DEFAULT_QUEUE) + 1 : l.burst ?? Math.ceil(l.rate);
    default:
      return l.limit;
  }
}

export const DEFAULT_QUEUE = 100;
