/**
 * Configuration of the resilience policies: timeouts, retries with their budget,
 * circuit breakers, health checks, outlier ejection and fallback answers.
 */
import { z } from "zod";
import {
  headerName,
  httpMethod,
  nonNegativeInt,
  positiveInt,
  statusCode,
  timerMs,
  timerMsOrZero,
  timerSeconds,
} from "../config/common.ts";

export const timeoutSchema = z.strictObject({
  connect_ms: timerMs.optional().meta({ description: "Time allowed to open a connection" }),
  first_byte_ms: timerMs.optional().meta({
    description: "Time allowed from sending the request to the response head, per attempt",
  }),
  request_ms: timerMs.optional().meta({
    description: "Time allowed for the whole exchange, retries and response body included",
  }),
});

const retryOn = z.union([
  z.enum(["connect_error", "timeout", "reset"]),
  statusCode.refine((s) => s >= 500, { error: "expected a 5xx status to retry on" }),
]);

/** What a route may set: when and how often to try again. */
export const retryPolicySchema = z.strictObject({
  attempts: nonNegativeInt.max(10).default(2).meta({
    description: "Extra attempts after the first one",
  }),
  on: z.array(retryOn).default(["connect_error", 502, 503, 504]).meta({
    description: "Failures that are retried: connect_error, timeout, reset or 5xx statuses",
  }),
  methods: z.array(httpMethod).optional().meta({
    description:
      "Methods that may be retried after the upstream saw the request; idempotent methods by default",
  }),
  backoff_ms: timerMsOrZero.default(25).meta({
    description: "Base of the exponential backoff between attempts (jittered)",
  }),
  max_backoff_ms: timerMs.default(1000),
  buffer_body_bytes: nonNegativeInt.default(65_536).meta({
    description:
      "Request bodies up to this size are kept so a retry can resend them; larger ones are retried only on connect errors",
  }),
});

/** An upstream's retries: the policy plus the budget all routes to it share. */
export const retriesSchema = retryPolicySchema.extend({
  budget_ratio: z.number().min(0).max(10).default(0.2).meta({
    description: "Retries allowed as a fraction of recent requests to this upstream",
  }),
  budget_min_retries: nonNegativeInt.default(10).meta({
    description: "Retries always allowed per budget window, however little the traffic",
  }),
  budget_window_s: z.number().positive().max(3600).default(10),
});

export const circuitBreakerSchema = z.strictObject({
  failure_ratio: z.number().gt(0).max(1).default(0.5),
  min_requests: positiveInt.default(20).meta({
    description: "Requests in the window before the failure ratio is trusted",
  }),
  window_s: z.number().positive().max(3600).default(10),
  consecutive_failures: positiveInt.optional().meta({
    description: "Open after this many failures in a row, whatever the ratio",
  }),
  open_s: z.number().positive().default(30),
  half_open_requests: positiveInt.default(1).meta({
    description: "Probes let through while half-open; all must succeed to close",
  }),
  failure_statuses: z.array(statusCode).default([500, 502, 503, 504]),
  shared: z.boolean().default(false).meta({
    description:
      "Share open circuits through the store (store.kind: redis) so all instances open together",
  }),
});

export const healthCheckSchema = z.strictObject({
  path: z.string().startsWith("/").default("/health"),
  interval_s: timerSeconds.default(5),
  timeout_ms: timerMs.default(1000),
  healthy_threshold: positiveInt.default(2).meta({
    description: "Passing checks in a row that readmit an unhealthy target",
  }),
  unhealthy_threshold: positiveInt.default(2).meta({
    description: "Failing checks in a row that take a target out of the balancer",
  }),
  expected_statuses: z.array(statusCode).min(1).default([200, 204]),
  host: z.string().optional().meta({
    description: "Host header of the check; the target's by default",
  }),
});

export const outlierSchema = z.strictObject({
  consecutive_failures: positiveInt.default(5).meta({
    description: "5xx answers or connection failures in a row that eject a target",
  }),
  base_ejection_s: z.number().positive().default(10),
  max_ejection_s: z.number().positive().default(300),
  max_ejection_percent: nonNegativeInt.max(100).default(50).meta({
    description:
      "Most targets passive ejection may hold out at once, as a percentage of the upstream's targets (rounded down; none with one target under 100); health checks are not limited by it",
  }),
}).refine((o) => o.max_ejection_s >= o.base_ejection_s, {
  path: ["max_ejection_s"],
  error: "expected max_ejection_s at least base_ejection_s",
});

export const fallbackSchema = z.strictObject({
  status: statusCode.refine((s) => s >= 200, { error: "expected a final status (200-599)" })
    .default(503),
  headers: z.record(headerName, z.string()).default({}),
  body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
    .optional(),
}).refine((f) => f.body === undefined || ![204, 205, 304].includes(f.status), {
  path: ["body"],
  error: "a 204, 205 or 304 fallback cannot have a body",
});

export type TimeoutConfig = z.output<typeof timeoutSchema>;
export type RetryPolicyConfig = z.output<typeof retryPolicySchema>;
export type RetriesConfig = z.output<typeof retriesSchema>;
export type CircuitBreakerConfig = z.output<typeof circuitBreakerSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type OutlierConfig = z.output<typeof outlierSchema>;
export type FallbackConfig = z.output<typeof fallbackSchema>;
