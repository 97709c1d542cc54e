import { z } from "zod";

export const accessLogSchema = z.strictObject({
  enabled: z.boolean().default(true),
  path: z.string().min(1).default("stdout").meta({ description: "stdout, stderr or a file" }),
  sample: z.number().min(0).max(1).default(1).meta({
    description: "Fraction of successful requests logged; refusals and errors are always logged",
  }),
});

export const metricsSchema = z.strictObject({
  consumer_label: z.boolean().default(true),
});

export const tracingSchema = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: "Propagate or start W3C traceparent" }),
});

export const observeSchema = z.strictObject({
  access_log: accessLogSchema.default({ enabled: true, path: "stdout", sample: 1 }),
  metrics: metricsSchema.default({ consumer_label: true }),
  tracing: tracingSchema.default({ enabled: true }),
});

export type ObserveConfig = z.output<typeof observeSchema>;
