/**
 * The configuration contract: the one schema users write against. Each concern
 * owns the schema of its section (next to its handler); this file composes them
 * and `config/gateway.schema.json` is generated from it for editors.
 */
import { z } from "zod";
import { adminSchema, listenerSchema, serverSchema } from "../server/schema.ts";
import { storeSchema } from "../store/schema.ts";
import { upstreamSchema } from "../proxy/schema.ts";
import {
  matchSchema,
  rewriteSchema,
  splitSchema,
  stickySchema,
  versioningSchema,
} from "../router/schema.ts";
import { authProviderSchema, consumerSchema, planSchema } from "../auth/schema.ts";
import { quotaSchema, rateLimitsSchema } from "../ratelimit/schema.ts";
import { corsSchema, transformSchema } from "../transform/schema.ts";
import { cacheSchema } from "../cache/schema.ts";
import { aggregateSchema } from "../aggregate/schema.ts";
import { ipRulesSchema, limitsSchema, securitySchema, wafSchema } from "../security/schema.ts";
import { fallbackSchema, retryPolicySchema, timeoutSchema } from "../resilience/schema.ts";
import { observeSchema } from "../observe/schema.ts";
import { asyncSchema } from "../jobs/schema.ts";

export const routeSchema = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/, {
    error: "expected a route name of letters, digits and _ . : -",
  }),
  match: matchSchema.default({}),
  priority: z.number().int().default(0).meta({
    description: "Breaks specificity: a higher priority is tried first",
  }),
  strip_prefix: z.boolean().default(false),
  rewrite: rewriteSchema.optional(),
  upstream: z.string().min(1).optional(),
  split: splitSchema.optional(),
  sticky: stickySchema.optional(),
  preserve_host: z.boolean().optional(),
  auth: z.array(z.string().min(1)).optional().meta({
    description: "Auth providers accepted on this route; any one suffices",
  }),
  forward_credentials: z.boolean().default(false),
  scopes: z.array(z.string().min(1)).optional(),
  rate_limit: rateLimitsSchema.optional(),
  quota: quotaSchema.optional(),
  transform: transformSchema.optional(),
  cache: cacheSchema.optional(),
  cors: corsSchema.optional(),
  limits: limitsSchema.optional(),
  ip: ipRulesSchema.optional(),
  waf: wafSchema.optional(),
  timeout: timeoutSchema.optional(),
  retries: retryPolicySchema.optional(),
  fallback: fallbackSchema.optional(),
  aggregate: aggregateSchema.optional(),
  async: asyncSchema.optional(),
}).superRefine((r, ctx) => {
  const targets = (["upstream", "split", "aggregate"] as const).filter((k) => r[k] !== undefined);
  if (targets.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["upstream"],
      message: "expected one of upstream, split or aggregate: where the route sends requests",
    });
  } else if (targets.length > 1) {
    ctx.addIssue({
      code: "custom",
      path: [targets[1]!],
      message: `expected only one of upstream, split, aggregate (found ${targets.join(", ")})`,
    });
  }
  if (r.strip_prefix && !r.match.path) {
    ctx.addIssue({
      code: "custom",
      path: ["strip_prefix"],
      message: "strip_prefix needs match.path (a prefix to strip)",
    });
  }
  if (r.sticky && !r.split) {
    ctx.addIssue({ code: "custom", path: ["sticky"], message: "sticky needs split" });
  }
});

export const configSchema = z.strictObject({
  listeners: z.array(listenerSchema).min(1).default([{
    name: "public",
    host: "0.0.0.0",
    port: 8080,
    proxy_protocol: false,
  }]),
  admin: adminSchema.optional(),
  server: serverSchema.default(serverSchema.parse({})),
  store: storeSchema.default(storeSchema.parse({})),
  upstreams: z.record(z.string().min(1), upstreamSchema).default({}),
  auth: z.record(z.string().min(1), authProviderSchema).default({}),
  consumers: z.array(consumerSchema).default([]),
  plans: z.record(z.string().min(1), planSchema).default({}),
  defaults: z.strictObject({
    rate_limit: rateLimitsSchema.optional(),
  }).optional().meta({ description: "Policies that apply to every route unless it sets its own" }),
  versioning: versioningSchema.optional(),
  security: securitySchema.default(securitySchema.parse({})),
  cors: corsSchema.optional().meta({ description: "CORS for every route without its own" }),
  observe: observeSchema.default(observeSchema.parse({})),
  routes: z.array(routeSchema).default([]),
});

export type GatewayConfig = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
