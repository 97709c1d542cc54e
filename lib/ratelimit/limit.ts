/**
 * Compiles one configured limit or quota into what the policy and the stores
 * use: the algorithm, the stable id that namespaces its counters, and how the
 * request's key is read.
 */
import { createHash } from "node:crypto";
import type { RequestContext } from "../core/context.ts";
import { compileCompositeKey, compileRequestKey, type RequestKey } from "../core/request_key.ts";
import type { StoredLimit } from "../store/limiter_store.ts";
import { type Algorithm, compileAlgorithm } from "./algorithms/index.ts";
import { capacityOf, DEFAULT_QUEUE, type QuotaConfig, type RateLimitConfig } from "./schema.ts";

export type HeaderStyle = "ietf" | "ietf_and_x" | "none";

export interface Limit extends StoredLimit {
  /** The error code of a refusal. */
  readonly refusal: "rate_limited" | "quota_exceeded";
  readonly headers: HeaderStyle;
  /** The request's key for this limit (never empty: a missing part falls back to the client IP). */
  readonly keyOf: (ctx: RequestContext) => string;
  /** `100 per 1m`, for refusal messages. */
  readonly description: string;
}

/** Where a limit is declared: the default for its id and for its key. */
export interface LimitScope {
  /** `route:NAME`, `plan:NAME` or `defaults`. */
  readonly name: string;
  readonly defaultKey: readonly string[];
}

export function compileRateLimit(c: RateLimitConfig, index: number, scope: LimitScope): Limit {
  const algorithm = algorithmOf(c);
  const kind = c.algorithm === "leaky_bucket" ? `leaky_bucket.${c.mode}` : c.algorithm;
  const amount = c.algorithm === "token_bucket" || c.algorithm === "leaky_bucket"
    ? c.rate
    : c.limit;
  return {
    id: `${c.id ?? `${scope.name}:${index}`}:${kind}:${c.per}${unitScale(algorithm, c.per)}`,
    algorithm,
    cost: c.cost,
    shadow: c.shadow,
    refusal: "rate_limited",
    headers: c.headers,
    keyOf: compileLimitKey(c.key ?? scope.defaultKey),
    description: `${amount} per ${formatMs(c.per)}`,
  };
}

export function compileQuota(c: QuotaConfig, scope: LimitScope): Limit {
  return {
    id: `${c.id ?? `${scope.name}:quota`}:quota:${c.per}`,
    algorithm: compileAlgorithm({
      kind: "fixed_window",
      limit: c.requests,
      window: { calendar: c.per },
    }),
    cost: c.cost,
    shadow: c.shadow,
    refusal: "quota_exceeded",
    headers: c.headers,
    keyOf: compileLimitKey(c.key ?? scope.defaultKey),
    description: `${c.requests} per ${c.per}`,
  };
}

function algorithmOf(c: RateLimitConfig): Algorithm {
  switch (c.algorithm) {
    case "token_bucket":
      return compileAlgorithm({
        kind: "token_bucket",
        rate: c.rate,
        perMs: c.per,
        burst: capacityOf(c),
      });
    case "leaky_bucket":
      return compileAlgorithm({
        kind: "leaky_bucket",
        mode: c.mode,
        rate: c.rate,
        perMs: c.per,
        capacity: c.mode === "shape" ? (c.queue ?? DEFAULT_QUEUE) + 1 : capacityOf(c),
      });
    case "fixed_window":
      return compileAlgorithm({ kind: "fixed_window", limit: c.limit, window: { every: c.per } });
    case "sliding_window":
      return compileAlgorithm({ kind: "sliding_window", limit: c.limit, perMs: c.per });
    case "sliding_log":
      return compileAlgorithm({ kind: "sliding_log", limit: c.limit, perMs: c.per });
  }
}

/**
 * A bucket counts in units of 1/perMs token, with perMs scaled up for a
 * fractional rate (whole_rate.ts: 10.5 per 1s counts in 1/10,000 of a token, 10
 * per 1s in 1/1,000). A state in one scale read in another holds ten times the
 * tokens or a tenth, so the scale is part of the id: a reload that changes it
 * starts the bucket afresh, as a change of window does. Empty at scale 1, so
 * whole rates keep the ids they always had.
 */
function unitScale(algorithm: Algorithm, perMs: number): string {
  const spec = algorithm.spec;
  if (spec.kind !== "token_bucket" && spec.kind !== "leaky_bucket") return "";
  return spec.perMs === perMs ? "" : `:x${spec.perMs / perMs}`;
}

/** Longer keys (client-chosen header values) are hashed, so that none can bloat a store. */
const MAX_KEY_LENGTH = 128;

export function compileLimitKey(specs: readonly string[]): (ctx: RequestContext) => string {
  if (specs.length === 1 && specs[0] === "ip") return (ctx) => ctx.clientIp;
  const read = compileCompositeKey(specs, presentPart);
  const bounded = specs.some((s) => s.startsWith("header:"));
  return (ctx) => {
    const key = read(ctx);
    // Leaving out a header or credentials must not escape the limit.
    if (key === null) return `~ip:${ctx.clientIp}`;
    if (bounded && key.length > MAX_KEY_LENGTH) {
      return `~sha256:${createHash("sha256").update(key).digest("base64url")}`;
    }
    // Keys of ours start with "~": a client-chosen value must not pose as one.
    return key.charCodeAt(0) === 126 ? `~${key}` : key;
  };
}

/**
 * A key part, with an empty header value as missing: every client that sends the
 * header empty would otherwise share one counter, whatever its address.
 */
function presentPart(spec: string): RequestKey {
  const read = compileRequestKey(spec);
  if (!spec.startsWith("header:")) return read;
  return (ctx) => {
    const v = read(ctx);
    return v === "" ? null : v;
  };
}

const UNITS: readonly (readonly [string, number])[] = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
];

function formatMs(ms: number): string {
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
