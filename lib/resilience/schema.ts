import { z } from "zod";
import { headerName, nonNegativeInt, positiveInt, statusCode } from "../config/common.ts";

export const timeoutSchema = z.strictObject({
  connect_ms: positiveInt.optional().meta({ description: "Time allowed to open a connection" }),
  first_byte_ms: positiveInt.optional().meta({
    description: "Time allowed from sending the request to the response head",
  }),
  request_ms: positiveInt.optional().meta({
    description: "Time allowed for the whole exchange, response body included",
  }),
});

const retryOn = z.union([
  z.enum(["connect_error", "timeout", "reset"]),
  statusCode,
]);

export const retriesSchema = z.strictObject({
  attempts: nonNegativeInt.max(10).default(2).meta({
    description: "Extra attempts after the first one",
  }),
  on: z.array(retryOn).default(["connect_error", 502, 503, 504]),
  methods: z.array(z.string()).optional().meta({
    description: "Methods that may be retried; idempotent methods by default",
  }),
  backoff_ms: nonNegativeInt.default(25).meta({ description: "Base of the exponential backoff" }),
  max_backoff_ms: positiveInt.default(1000),
  budget_ratio: z.number().min(0).max(10).default(0.2).meta({
    description: "Retries allowed as a fraction of recent requests to this upstream",
  }),
});

export const circuitBreakerSchema = z.strictObject({
  failure_ratio: z.number().gt(0).max(1).default(0.5),
  min_requests: positiveInt.default(20),
  window_s: z.number().positive().default(10),
  consecutive_failures: positiveInt.optional().meta({
    description: "Open after this many failures in a row, whatever the ratio",
  }),
  open_s: z.number().positive().default(30),
  half_open_requests: positiveInt.default(1).meta({
    description: "Probes let through while half-open",
  }),
  failure_statuses: z.array(statusCode).default([500, 502, 503, 504]),
  shared: z.boolean().default(false).meta({
    description: "Share circuit state through the store so all instances open together",
  }),
});

export const healthCheckSchema = z.strictObject({
  path: z.string().startsWith("/").default("/health"),
  interval_s: z.number().positive().default(5),
  timeout_ms: positiveInt.default(1000),
  healthy_threshold: positiveInt.default(2),
  unhealthy_threshold: positiveInt.default(2),
  expected_statuses: z.array(statusCode).default([200, 204]),
  host: z.string().optional(),
});

export const outlierSchema = z.strictObject({
  consecutive_failures: positiveInt.default(5),
  base_ejection_s: z.number().positive().default(10),
  max_ejection_s: z.number().positive().default(300),
});

export const fallbackSchema = z.strictObject({
  status: statusCode.default(503),
  headers: z.record(headerName, z.string()).default({}),
  body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
    .optional(),
});

export type TimeoutConfig = z.output<typeof timeoutSchema>;
export type RetriesConfig = z.output<typeof retriesSchema>;
export type CircuitBreakerConfig = z.output<typeof circuitBreakerSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type FallbackConfig = z.output<typeof fallbackSchema>;
