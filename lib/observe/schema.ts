import { z } from "zod";
import { timerMs } from "../config/common.ts";

export const accessLogSchema = z.strictObject({
  enabled: z.boolean().default(true),
  path: z.string().min(1).default("stdout").meta({
    description: "stdout, stderr or a file (relative to the config file's folder)",
  }),
  sample: z.number().min(0).max(1).default(1).meta({
    description: "Fraction of successful requests logged; refusals and errors are always logged",
  }),
  redact_query: z.array(z.string().min(1)).default([]).meta({
    description:
      "Query parameters masked in logged paths, besides the built-in credential names and auth providers' `query`",
  }),
  flush_ms: timerMs.default(1000).meta({
    description: "Longest time a line waits in the buffer before it is written",
  }),
});

export const metricsSchema = z.strictObject({
  consumer_label: z.boolean().default(true).meta({
    description: "Label gateway_requests_total by consumer; turn off when consumers are many",
  }),
});

export const tracingSchema = z.strictObject({
  enabled: z.boolean().default(true).meta({
    description: "Continue or start a W3C trace as a hop of its own (traceparent with the " +
      "gateway's span id); false passes the caller's traceparent and tracestate on unchanged",
  }),
});

export const observeSchema = z.strictObject({
  access_log: accessLogSchema.default(accessLogSchema.parse({})),
  metrics: metricsSchema.default(metricsSchema.parse({})),
  tracing: tracingSchema.default(tracingSchema.parse({})),
});

export type ObserveConfig = z.output<typeof observeSchema>;
