import { z } from "zod";
import { headerName, httpUrl, nonNegativeInt, timerMs } from "../config/common.ts";
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
export type JwtAlgorithm = (typeof ALGS)[number];

/** Headers that carry the verified identity upstream; `null` turns one off. */
function identityHeaders(subject: string | null) {
  const defaults = { consumer: "X-Consumer-Id", subject, scopes: "X-User-Scopes" };
  return z.strictObject({
    consumer: headerName.nullable().default(defaults.consumer),
    subject: headerName.nullable().default(defaults.subject),
    scopes: headerName.nullable().default(defaults.scopes),
  }).default(defaults).meta({
    description:
      "Upstream headers for the consumer id, the subject and the scopes (null: not sent)",
  });
}

const realm = z.string().min(1).regex(/^[^"\\]*$/, { error: "expected a realm without quotes" })
  .default("gateway").meta({ description: "Realm named in WWW-Authenticate challenges" });

const claimsToHeaders = z.record(z.string().min(1), headerName).default({}).meta({
  description: "Claims (or certificate fields) sent upstream as headers: { email: X-User-Email }",
});

export const jwtProviderSchema = z.strictObject({
  kind: z.literal("jwt"),
  jwks_url: httpUrl.optional(),
  jwks_file: z.string().min(1).optional(),
  public_key_file: z.string().min(1).optional().meta({
    description: "PEM public key (SPKI) or certificate that signs tokens",
  }),
  secret: z.string().min(1).optional().meta({ description: "Shared secret for HS* algorithms" }),
  issuer: z.union([z.string(), z.array(z.string())]).optional(),
  audience: z.union([z.string(), z.array(z.string())]).optional(),
  algorithms: z.array(z.enum(ALGS)).min(1).default(["RS256"]),
  clock_skew_s: z.number().min(0).default(30),
  required_claims: z.array(z.string()).default(["exp"]),
  header: headerName.default("Authorization").meta({
    description: "Header carrying the token; `Authorization` expects the Bearer scheme",
  }),
  query: z.string().min(1).optional().meta({
    description: "Query parameter that may carry the token instead (RFC 6750 §2.3)",
  }),
  jwks_refresh_min_interval_s: z.number().positive().default(30).meta({
    description: "Least time between two JWKS fetches caused by unknown kids",
  }),
  jwks_cache_ttl_s: z.number().positive().default(600).meta({
    description: "Age after which the key set is refreshed in the background",
  }),
  jwks_timeout_ms: timerMs.default(2000),
  token_cache_size: nonNegativeInt.default(10_000).meta({
    description: "Verified tokens remembered so that a reused token is not verified again (0: off)",
  }),
  consumer_claim: z.string().default("sub"),
  scopes_claim: z.string().optional().meta({
    description: "Claim holding the scopes; default `scope` (space-separated) then `scp`",
  }),
  claims_to_headers: claimsToHeaders,
  identity_headers: identityHeaders("X-User-Id"),
  realm,
});

export const apiKeyProviderSchema = z.strictObject({
  kind: z.literal("api_key"),
  header: headerName.default("X-API-Key"),
  query: z.string().min(1).optional().meta({
    description: "Query parameter that may carry the key; the header wins when both agree",
  }),
  identity_headers: identityHeaders(null),
  realm,
});

export const introspectionProviderSchema = z.strictObject({
  kind: z.literal("oauth2_introspection"),
  url: httpUrl,
  client_id: z.string().min(1),
  client_secret: z.string().min(1),
  client_auth: z.enum(["basic", "post"]).default("basic").meta({
    description: "client_secret_basic (HTTP Basic) or client_secret_post (form fields)",
  }),
  audience: z.union([z.string(), z.array(z.string())]).optional().meta({
    description: "When set, the token's `aud` must contain one of these",
  }),
  cache_ttl_s: z.number().min(0).default(30),
  negative_cache_ttl_s: z.number().min(0).default(5),
  cache_size: nonNegativeInt.default(10_000),
  timeout_ms: timerMs.default(2000),
  header: headerName.default("Authorization"),
  consumer_claim: z.string().default("sub"),
  claims_to_headers: claimsToHeaders,
  identity_headers: identityHeaders("X-User-Id"),
  realm,
});

export const mtlsProviderSchema = z.strictObject({
  kind: z.literal("mtls"),
  consumer_from: z.enum(["subject_cn", "san_uri", "san_dns", "san_email"]).default("subject_cn"),
  san_uri_prefix: z.string().optional().meta({
    description: "With consumer_from: san_uri, use the first URI SAN that starts with this",
  }),
  claims_to_headers: claimsToHeaders,
  identity_headers: identityHeaders("X-User-Id"),
  realm,
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
    description: "Token subjects or certificate identities that map to this consumer: " +
      "`<provider>:<identity>` for that identity provider's callers only, bare for every provider's",
  }),
  headers: z.record(headerName, z.string()).default({}).meta({
    description: "Headers sent upstream with every request of this consumer",
  }),
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
export type IdentityHeadersConfig = JwtProviderConfig["identity_headers"];
