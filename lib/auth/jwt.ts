/**
 * `kind: jwt`: signed tokens (JWS compact form) verified with `jose` against
 * an algorithm allowlist, the issuer, the audience and the time claims (with
 * clock skew), then checked against revoked `jti`s.
 *
 * A verified token is remembered (bounded, until it expires or the key set
 * changes), so a client reusing its token pays for one signature check, not
 * one per request: a lookup, two time comparisons and a revocation check.
 */
import {
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyOptions,
} from "jose";
import type { Clock } from "../core/clock.ts";
import type { RequestContext } from "../core/context.ts";
import { BoundedMap } from "./bounded_map.ts";
import type { ConsumerTable, ProviderSubjects } from "./consumers.ts";
import { CONFLICT, CredentialReader } from "./credentials.ts";
import { IdentityHeaders, scopesOf } from "./identity.ts";
import type { KeySource } from "./jwks.ts";
import {
  AMBIGUOUS,
  type Authenticated,
  type AuthProvider,
  type AuthResult,
  refusal,
} from "./provider.ts";
import type { JwtProviderConfig } from "./schema.ts";
import type { CredentialStore } from "./store.ts";

interface VerifiedToken {
  readonly result: Authenticated;
  /** Key set generation it was verified with. */
  readonly generation: number;
  readonly expMs: number;
  readonly nbfMs: number;
  readonly jti: string | null;
}

const EXPIRED = refusal("token_expired");
const NOT_YET_VALID = refusal("token_not_yet_valid");
const REVOKED = refusal("token_revoked");
const MALFORMED = refusal("invalid_token", "malformed");

/**
 * Longest encoded protected header read. Real ones hold a few hundred
 * characters, a few thousand with an `x5c` chain. jose parses the header once
 * here and again for every key tried, and V8 parses JSON of many small values
 * at 3 to 20 ns a byte against 0.2 for one long string: 16 KB of `[` cost 0.3
 * ms a parse. A bound on nesting would not do: an object of 700 members costs
 * half as much.
 */
export const MAX_JWT_HEADER_CHARS = 8192;

const HEADER_TOO_LONG = refusal(
  "invalid_token",
  "header_too_long",
  `The token's protected header is longer than ${MAX_JWT_HEADER_CHARS} characters`,
);

export interface JwtProviderDeps {
  keys: KeySource;
  consumers: ConsumerTable;
  store: CredentialStore;
  clock: Clock;
}

export class JwtProvider implements AuthProvider {
  readonly challenge: string;
  private readonly reader: CredentialReader;
  private readonly headers: IdentityHeaders;
  private readonly allowed: ReadonlySet<string>;
  private readonly skewMs: number;
  private readonly verifyOptions: Omit<JWTVerifyOptions, "currentDate">;
  private readonly verified: BoundedMap<string, VerifiedToken>;
  private readonly subjects: ProviderSubjects;

  constructor(
    readonly name: string,
    private readonly cfg: JwtProviderConfig,
    private readonly d: JwtProviderDeps,
  ) {
    this.challenge = `Bearer realm="${cfg.realm}"`;
    this.reader = new CredentialReader(cfg, true);
    this.headers = new IdentityHeaders(cfg.identity_headers, cfg.claims_to_headers);
    this.allowed = new Set(cfg.algorithms);
    this.skewMs = cfg.clock_skew_s * 1000;
    this.verifyOptions = {
      algorithms: cfg.algorithms,
      clockTolerance: cfg.clock_skew_s,
      requiredClaims: cfg.required_claims,
      ...(cfg.issuer !== undefined ? { issuer: cfg.issuer } : {}),
      ...(cfg.audience !== undefined ? { audience: cfg.audience } : {}),
    };
    this.verified = new BoundedMap(cfg.token_cache_size);
    this.subjects = d.consumers.subjectsOf(name);
  }

  authenticate(ctx: RequestContext): AuthResult | null | Promise<AuthResult> {
    const token = this.reader.read(ctx);
    if (token === null) return null;
    if (token === CONFLICT) return AMBIGUOUS;
    const now = ctx.now;
    const hit = this.verified.get(token);
    if (hit !== undefined) {
      if (hit.generation === this.d.keys.generation) return this.recheck(hit, token, now);
      // The key set changed: every remembered token is verified again.
      this.verified.clear();
    }
    return this.verify(token, now);
  }

  stripCredentials(ctx: RequestContext): void {
    this.reader.strip(ctx);
  }

  /** What may have changed since a token was verified: the time, and revocations. */
  private recheck(t: VerifiedToken, token: string, now: number): AuthResult {
    if (now >= t.expMs + this.skewMs) {
      this.verified.delete(token);
      return EXPIRED;
    }
    if (now + this.skewMs < t.nbfMs) return NOT_YET_VALID;
    if (t.jti !== null && this.d.store.isRevoked(t.jti, now)) return REVOKED;
    return t.result;
  }

  private async verify(token: string, now: number): Promise<AuthResult> {
    if (token.indexOf(".") > MAX_JWT_HEADER_CHARS) return HEADER_TOO_LONG;
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return MALFORMED;
    }
    const alg = header.alg;
    if (typeof alg !== "string" || !this.allowed.has(alg)) {
      return refusal("unsupported_algorithm", alg === "none" ? "alg_none" : "alg_not_allowed");
    }
    if (header.kid !== undefined && typeof header.kid !== "string") return MALFORMED;
    const keys = await this.d.keys.keysFor(header.kid, alg);
    // Read after the lookup: a refetch it caused has changed the generation.
    const generation = this.d.keys.generation;
    if (keys === "unknown") return refusal("unknown_key");
    if (keys === "unavailable") return refusal("auth_unavailable", "jwks_unavailable");
    let payload: JWTPayload | null = null;
    let failure: AuthResult = refusal("invalid_signature");
    const options = { ...this.verifyOptions, currentDate: new Date(now) };
    for (const key of keys) {
      try {
        payload = (await jwtVerify(token, key, options)).payload;
        break;
      } catch (e) {
        failure = joseRefusal(e);
        // Another key may still verify it: a kid-less token, or a kid the JWKS lists twice.
        if (!(e instanceof errors.JWSSignatureVerificationFailed)) break;
      }
    }
    if (payload === null) return failure;
    const subject = payload[this.cfg.consumer_claim];
    if (typeof subject !== "string" || subject === "") {
      return refusal("missing_claim", `no_${this.cfg.consumer_claim}`);
    }
    const result = this.headers.authenticated({
      provider: this.name,
      subject: typeof payload.sub === "string" ? payload.sub : subject,
      scopes: scopesOf(payload, this.cfg.scopes_claim),
      claims: payload,
    }, this.subjects.forSubject(subject));
    const t: VerifiedToken = {
      result,
      generation,
      expMs: typeof payload.exp === "number" ? payload.exp * 1000 : Infinity,
      nbfMs: typeof payload.nbf === "number" ? payload.nbf * 1000 : -Infinity,
      jti: typeof payload.jti === "string" ? payload.jti : null,
    };
    this.verified.set(token, t);
    return this.recheck(t, token, now);
  }
}

/** A jose failure as a refusal with a specific code. */
function joseRefusal(e: unknown): AuthResult {
  if (e instanceof errors.JWTExpired) return EXPIRED;
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === "missing") return refusal("missing_claim", `no_${e.claim}`);
    if (e.claim === "nbf") return NOT_YET_VALID;
    if (e.claim === "iss") return refusal("invalid_issuer");
    if (e.claim === "aud") return refusal("invalid_audience");
    return refusal("invalid_token", `bad_${e.claim}`);
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return refusal("invalid_signature");
  if (e instanceof errors.JOSEAlgNotAllowed) return refusal("unsupported_algorithm");
  return MALFORMED;
}
