import { z } from "zod";
import { headerName, httpUrl, positiveInt } from "../config/common.ts";
import { quotaSchema, rateLimitsSchema } from "../ratelimit/schema.ts";

const ALGS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512",
] as const;

export const jwtProviderSchema = z.strictObject({
  kind: z.literal("jwt"),
  jwks_url: httpUrl.optional(),
  jwks_file: z.string().min(1).optional(),
  public_key_file: z.string().min(1).optional(),
  secret: z.string().min(1).optional().meta({ description: "Shared secret for HS* algorithms" }),
  issuer: z.union([z.string(), z.array(z.string())]).optional(),
  audience: z.union([z.string(), z.array(z.string())]).optional(),
  algorithms: z.array(z.enum(ALGS)).min(1).default(["RS256"]),
  clock_skew_s: z.number().min(0).default(30),
  required_claims: z.array(z.string()).default(["exp"]),
  header: headerName.default("Authorization"),
  query: z.string().min(1).optional(),
  jwks_refresh_min_interval_s: z.number().positive().default(30).meta({
    description: "Least time between two JWKS fetches caused by unknown kids",
  }),
  jwks_cache_ttl_s: z.number().positive().default(600),
  consumer_claim: z.string().default("sub"),
  scopes_claim: z.string().optional(),
  claims_to_headers: z.record(z.string(), headerName).default({}),
});

export const apiKeyProviderSchema = z.strictObject({
  kind: z.literal("api_key"),
  header: headerName.default("X-API-Key"),
  query: z.string().min(1).optional(),
});

export const introspectionProviderSchema = z.strictObject({
  kind: z.literal("oauth2_introspection"),
  url: httpUrl,
  client_id: z.string().min(1),
  client_secret: z.string().min(1),
  cache_ttl_s: z.number().min(0).default(30),
  negative_cache_ttl_s: z.number().min(0).default(5),
  timeout_ms: positiveInt.default(2000),
  header: headerName.default("Authorization"),
  consumer_claim: z.string().default("sub"),
  claims_to_headers: z.record(z.string(), headerName).default({}),
});

export const mtlsProviderSchema = z.strictObject({
  kind: z.literal("mtls"),
  consumer_from: z.enum(["subject_cn", "san_uri", "san_dns", "san_email"]).default("subject_cn"),
  san_uri_prefix: z.string().optional(),
});

export const authProviderSchema = z.discriminatedUnion("kind", [
  jwtProviderSchema,
  apiKeyProviderSchema,
  introspectionProviderSchema,
  mtlsProviderSchema,
]);

export const consumerSchema = z.strictObject({
  id: z.string().min(1),
  plan: z.string().min(1).optional(),
  api_keys: z.array(z.string().min(1)).default([]).meta({
    description: "Keys as plain values (use ${ENV}) or sha256:<hex> hashes",
  }),
  scopes: z.array(z.string()).default([]),
  subjects: z.array(z.string()).default([]).meta({
    description: "Token subjects or certificate identities that map to this consumer",
  }),
  headers: z.record(headerName, z.string()).default({}),
});

export const planSchema = z.strictObject({
  rate_limit: rateLimitsSchema.optional(),
  quota: quotaSchema.optional(),
});

export type JwtProviderConfig = z.output<typeof jwtProviderSchema>;
export type ApiKeyProviderConfig = z.output<typeof apiKeyProviderSchema>;
export type IntrospectionProviderConfig = z.output<typeof introspectionProviderSchema>;
export type MtlsProviderConfig = z.output<typeof mtlsProviderSchema>;
export type AuthProviderConfig = z.output<typeof authProviderSchema>;
export type ConsumerConfig = z.output<typeof consumerSchema>;
export type PlanConfig = z.output<typeof planSchema>;
