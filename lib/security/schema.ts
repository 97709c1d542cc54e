import { z } from "zod";
import { headerName, httpMethod, linearRegex, positiveInt, timerMs } from "../config/common.ts";
import { cidrError } from "./cidr.ts";
import { BUILTIN_CATEGORIES } from "./waf/builtin.ts";

export const cidr = z.string().superRefine((s, ctx) => {
  const error = cidrError(s);
  if (error !== null) ctx.addIssue({ code: "custom", message: error });
});

export const ipRulesSchema = z.strictObject({
  allow: z.array(cidr).optional().meta({
    description: "When set, only client addresses in these blocks are served",
  }),
  deny: z.array(cidr).optional().meta({
    description: "Client addresses in these blocks are refused (deny wins over allow)",
  }),
});

/**
 * The HTTP server (hyper, inside Deno.serve) refuses a request head over 64 KiB
 * or with more than 128 fields with a bare 400 before the gateway sees it, so
 * limits above those could never apply.
 */
const HEAD_BYTES_CEILING = 65_536;
const HEADER_COUNT_CEILING = 128;

const headerBytes = positiveInt.max(HEAD_BYTES_CEILING, {
  error: `expected at most ${HEAD_BYTES_CEILING}: the HTTP server refuses larger request heads`,
});
const headerCount = positiveInt.max(HEADER_COUNT_CEILING, {
  error: `expected at most ${HEADER_COUNT_CEILING}: the HTTP server refuses more header fields`,
});
const uriBytes = positiveInt.max(HEAD_BYTES_CEILING, {
  error: `expected at most ${HEAD_BYTES_CEILING}: the HTTP server refuses longer request targets`,
});

export const limitsSchema = z.strictObject({
  max_body_bytes: positiveInt.optional(),
  max_header_bytes: headerBytes.optional(),
  max_headers: headerCount.optional(),
  max_uri_bytes: uriBytes.optional(),
});

/** A rule's pattern: never empty, which would match every request. */
const rulePattern = linearRegex.min(1);

/**
 * How a rule tests one value. A plain string is a regular expression; the object
 * forms say exactly what is compared.
 */
export const valueMatcherSchema = z.union([
  rulePattern,
  z.strictObject({ regex: rulePattern, case_insensitive: z.boolean().default(false) }),
  z.strictObject({ equals: z.string(), case_insensitive: z.boolean().default(false) }),
  z.strictObject({ prefix: z.string().min(1), case_insensitive: z.boolean().default(false) }),
  z.strictObject({ contains: z.string().min(1), case_insensitive: z.boolean().default(false) }),
  z.strictObject({ present: z.boolean() }),
]);

export const wafRuleSchema = z.strictObject({
  id: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/, {
    error: "expected a rule id of letters, digits and _ . : -",
  }),
  action: z.enum(["block", "log"]).default("block"),
  methods: z.array(httpMethod).min(1).optional(),
  path: valueMatcherSchema.optional().meta({ description: "The normalised path, percent-decoded" }),
  query: valueMatcherSchema.optional().meta({
    description: "The query string without `?`, percent-decoded (`+` as space)",
  }),
  headers: z.record(headerName, valueMatcherSchema).optional().meta({
    description: "Header name -> matcher; every listed header must match",
  }),
  body: valueMatcherSchema.optional().meta({
    description:
      "The first `body_bytes` of the body as text (form bodies percent-decoded, JSON string escapes decoded)",
  }),
}).superRefine((r, ctx) => {
  if (!r.methods && !r.path && !r.query && !r.headers && !r.body) {
    ctx.addIssue({
      code: "custom",
      message: "expected at least one condition: methods, path, query, headers or body",
    });
  }
});

const builtinCategory = z.enum(BUILTIN_CATEGORIES);

export const wafSchema = z.strictObject({
  builtin: z.union([z.boolean(), z.array(builtinCategory).min(1)]).default(false).meta({
    description: `The built-in rule set: true for all of ${
      BUILTIN_CATEGORIES.join(", ")
    }, or a list of categories`,
  }),
  builtin_action: z.enum(["block", "log"]).default("block").meta({
    description: "What a built-in rule match does (log: observe without refusing)",
  }),
  body_bytes: positiveInt.max(1_048_576).default(8192).meta({
    description: "How much of a request body the rules inspect",
  }),
  rules: z.array(wafRuleSchema).default([]),
});

export const securitySchema = z.strictObject({
  trusted_proxies: z.array(cidr).default([]),
  client_ip_header: z.enum(["x-forwarded-for", "forwarded"]).default("x-forwarded-for").meta({
    description:
      "Which header trusted proxies put the client address in (X-Forwarded-For or RFC 7239 Forwarded)",
  }),
  max_body_bytes: positiveInt.default(10_485_760),
  max_header_bytes: headerBytes.default(16_384),
  max_headers: headerCount.default(100),
  max_uri_bytes: uriBytes.default(8_192),
  merge_slashes: z.boolean().default(true),
  allow_path_parameters: z.boolean().default(false).meta({
    description:
      "Serve paths whose segments carry ;parameters (refused by default: servlet containers drop them, so routes would not match what the upstream serves)",
  }),
  body_timeout_ms: timerMs.default(60_000).meta({
    description: "Longest wait for the next piece of a request body (408 after)",
  }),
  send_timeout_ms: timerMs.default(60_000).meta({
    description:
      "HTTP/1.1 listeners (not http2: true): longest wait for a client to take the next bytes of an answer (the connection is closed after)",
  }),
  header_timeout_ms: timerMs.default(30_000).meta({
    description:
      "Plain HTTP listeners: longest time from the first byte of a request head to its end (408 after)",
  }),
  ip: ipRulesSchema.optional(),
  waf: wafSchema.optional(),
});

export type IpRulesConfig = z.output<typeof ipRulesSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type ValueMatcherConfig = z.output<typeof valueMatcherSchema>;
export type WafRuleConfig = z.output<typeof wafRuleSchema>;
export type WafConfig = z.output<typeof wafSchema>;
export type SecurityConfig = z.output<typeof securitySchema>;
