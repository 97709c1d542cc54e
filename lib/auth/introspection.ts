/**
 * `kind: oauth2_introspection`: opaque tokens checked with the authorisation
 * server (RFC 7662). The gateway authenticates as a client (Basic or form
 * fields), caches an active answer for `min(cache_ttl_s, exp - now)` and an
 * inactive one for `negative_cache_ttl_s`, and lets every request waiting on
 * the same unknown token share one call. A failing endpoint is a 503, never a
 * cached refusal: the token may well be valid.
 */
import { createHash } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import type { RequestContext } from "../core/context.ts";
import { errorFields, type Logger } from "../observe/logger.ts";
import { BoundedMap } from "./bounded_map.ts";
import { answerText } from "./answer_body.ts";
import type { ConsumerTable, ProviderSubjects } from "./consumers.ts";
import { CONFLICT, CredentialReader } from "./credentials.ts";
import { IdentityHeaders, scopesOf } from "./identity.ts";
import { AMBIGUOUS, type AuthProvider, type AuthResult, refusal } from "./provider.ts";
import type { IntrospectionProviderConfig } from "./schema.ts";

interface Cached {
  readonly result: AuthResult;
  readonly untilMs: number;
}

const INACTIVE = refusal("token_inactive");
const REFRESH_TOKEN = refusal("invalid_token", "refresh_token");
const UNAVAILABLE = refusal("auth_unavailable", "introspection_unavailable");

/**
 * Tokens longer than this are cached under their SHA-256: a token is as long
 * as the head limits let a client make it (16 KiB by default), and every new
 * one, active or not, is kept, so 10,000 made-up 16 KiB tokens held 166 MB of
 * heap. Opaque tokens are mostly 32-64 characters and are kept as they are.
 */
export const MAX_CACHE_KEY_CHARS = 128;

/** The largest introspection answer read: RFC 7662 answers are a few hundred bytes of claims. */
export const MAX_ANSWER_BYTES = 256 * 1024;

export interface IntrospectionDeps {
  consumers: ConsumerTable;
  clock: Clock;
  logger: Logger;
}

export class IntrospectionProvider implements AuthProvider {
  readonly challenge: string;
  private readonly reader: CredentialReader;
  private readonly headers: IdentityHeaders;
  private readonly cache: BoundedMap<string, Cached>;
  private readonly inflight = new Map<string, Promise<AuthResult>>();
  private readonly requestHeaders: Record<string, string>;
  private readonly clientFields: string;
  private readonly audiences: readonly string[] | null;
  private readonly subjects: ProviderSubjects;

  constructor(
    readonly name: string,
    private readonly cfg: IntrospectionProviderConfig,
    private readonly d: IntrospectionDeps,
  ) {
    this.challenge = `Bearer realm="${cfg.realm}"`;
    this.reader = new CredentialReader({ header: cfg.header }, true);
    this.headers = new IdentityHeaders(cfg.identity_headers, cfg.claims_to_headers);
    this.cache = new BoundedMap(cfg.cache_size);
    this.subjects = d.consumers.subjectsOf(name);
    this.requestHeaders = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    this.clientFields = "";
    if (cfg.client_auth === "basic") {
      // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined.
      const basic = `${formEncode(cfg.client_id)}:${formEncode(cfg.client_secret)}`;
      this.requestHeaders.authorization = `Basic ${btoa(basic)}`;
    } else {
      this.clientFields = `&client_id=${formEncode(cfg.client_id)}&client_secret=${
        formEncode(cfg.client_secret)
      }`;
    }
    this.audiences = cfg.audience === undefined
      ? null
      : Array.isArray(cfg.audience)
      ? cfg.audience
      : [cfg.audience];
  }

  authenticate(ctx: RequestContext): AuthResult | null | Promise<AuthResult> {
    const token = this.reader.read(ctx);
    if (token === null) return null;
    if (token === CONFLICT) return AMBIGUOUS;
    const key = cacheKeyOf(token);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      if (ctx.now < hit.untilMs) return hit.result;
      this.cache.delete(key);
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.introspect(token, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  /** Answers cached, and the characters of their keys (what a flood of long tokens would grow). */
  get cached(): { entries: number; keyChars: number } {
    let keyChars = 0;
    for (const k of this.cache.keys()) keyChars += k.length;
    return { entries: this.cache.size, keyChars };
  }

  stripCredentials(ctx: RequestContext): void {
    this.reader.strip(ctx);
  }

  private async introspect(token: string, key: string): Promise<AuthResult> {
    let answer: Record<string, unknown>;
    try {
      const res = await fetch(this.cfg.url, {
        method: "POST",
        headers: this.requestHeaders,
        body: `token=${formEncode(token)}&token_type_hint=access_token${this.clientFields}`,
        signal: AbortSignal.timeout(this.cfg.timeout_ms),
        // A redirect would re-send the token (and a 307 the client secret) to another origin
        // and take its answer as the verdict: the configured endpoint alone decides.
        redirect: "manual",
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`the introspection endpoint answered ${res.status}`);
      }
      answer = JSON.parse(await answerText(res, MAX_ANSWER_BYTES, "introspection answer"));
      if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
        throw new Error("the introspection answer is not a JSON object");
      }
    } catch (e) {
      this.d.logger.every(`introspection:${this.cfg.url}`, 10_000, "warn", "introspection failed", {
        provider: this.name,
        url: this.cfg.url,
        ...errorFields(e),
      });
      return UNAVAILABLE;
    }
    const now = this.d.clock.now();
    const { result, ttlMs } = this.judge(answer, now);
    if (ttlMs > 0) this.cache.set(key, { result, untilMs: now + ttlMs });
    return result;
  }

  /** The decision an introspection answer stands for, and how long it may be reused. */
  private judge(a: Record<string, unknown>, now: number): { result: AuthResult; ttlMs: number } {
    const negative = { result: INACTIVE, ttlMs: this.cfg.negative_cache_ttl_s * 1000 };
    if (a.active !== true) return negative;
    // A refresh token is not a credential for an API (some servers answer for any token).
    if (isRefreshToken(a)) return { ...negative, result: REFRESH_TOKEN };
    const expMs = typeof a.exp === "number" ? a.exp * 1000 : Infinity;
    if (expMs <= now) return negative;
    if (typeof a.nbf === "number" && a.nbf * 1000 > now) {
      return { result: refusal("token_not_yet_valid"), ttlMs: 0 };
    }
    // An `exp` that is there but not a number (RFC 7662 §2.2: an integer) bounds nothing: not kept.
    const ttlMs = a.exp !== undefined && typeof a.exp !== "number"
      ? 0
      : Math.min(this.cfg.cache_ttl_s * 1000, expMs - now);
    if (this.audiences !== null && !audienceMatches(a.aud, this.audiences)) {
      return { result: refusal("invalid_audience"), ttlMs };
    }
    const subject = a[this.cfg.consumer_claim];
    if (typeof subject !== "string" || subject === "") {
      return { result: refusal("missing_claim", `no_${this.cfg.consumer_claim}`), ttlMs };
    }
    const result = this.headers.authenticated({
      provider: this.name,
      subject: typeof a.sub === "string" ? a.sub : subject,
      scopes: scopesOf(a),
      claims: a,
    }, this.subjects.forSubject(subject));
    return { result, ttlMs };
  }
}

/** Whether an answer names the token a refresh token (`token_type` or `token_use`, any case). */
function isRefreshToken(a: Record<string, unknown>): boolean {
  for (const field of [a.token_type, a.token_use]) {
    if (typeof field === "string" && /^refresh(?:_token)?$/i.test(field)) return true;
  }
  return false;
}

function audienceMatches(aud: unknown, wanted: readonly string[]): boolean {
  if (typeof aud === "string") return wanted.includes(aud);
  return Array.isArray(aud) && aud.some((x) => wanted.includes(x));
}

/**
 * The cache key of a token: itself, or past MAX_CACHE_KEY_CHARS its digest.
 * Digests start with "~", so a short token that does too is escaped: no
 * client can send a text that poses as another token's digest.
 */
export function cacheKeyOf(token: string): string {
  if (token.length > MAX_CACHE_KEY_CHARS) {
    return `~sha256:${createHash("sha256").update(token).digest("base64url")}`;
  }
  return token.charCodeAt(0) === 126 ? `~${token}` : token;
}

/** application/x-www-form-urlencoded encoding of one value. */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, "+");
}
