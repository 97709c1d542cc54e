import { z } from "zod";
import { positiveInt } from "../config/common.ts";
import { isValidCidr } from "./cidr.ts";

export const cidr = z.string().refine(isValidCidr, {
  error: "expected an IP address or CIDR block such as 10.0.0.0/8 or 2001:db8::/32",
});

export const ipRulesSchema = z.strictObject({
  allow: z.array(cidr).optional(),
  deny: z.array(cidr).optional(),
});

export const limitsSchema = z.strictObject({
  max_body_bytes: positiveInt.optional(),
  max_header_bytes: positiveInt.optional(),
  max_headers: positiveInt.optional(),
  max_uri_bytes: positiveInt.optional(),
});

export const wafRuleSchema = z.strictObject({
  id: z.string().min(1),
  action: z.enum(["block", "log"]).default("block"),
  methods: z.array(z.string()).optional(),
  path: z.string().optional(),
  query: z.string().optional(),
  header: z.strictObject({ name: z.string(), contains: z.string() }).optional(),
  body: z.string().optional(),
});

export const wafSchema = z.strictObject({
  builtin: z.boolean().default(false),
  body_bytes: positiveInt.default(8192),
  rules: z.array(wafRuleSchema).default([]),
});

export const securitySchema = z.strictObject({
  trusted_proxies: z.array(cidr).default([]),
  max_body_bytes: positiveInt.default(10_485_760),
  max_header_bytes: positiveInt.default(16_384),
  max_headers: positiveInt.default(100),
  max_uri_bytes: positiveInt.default(8_192),
  merge_slashes: z.boolean().default(true),
  header_timeout_ms: positiveInt.default(10_000),
  body_timeout_ms: positiveInt.default(60_000),
  ip: ipRulesSchema.optional(),
  waf: wafSchema.optional(),
});

export type IpRulesConfig = z.output<typeof ipRulesSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type SecurityConfig = z.output<typeof securitySchema>;
