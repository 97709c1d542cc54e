/**
 * Verification keys, imported once per algorithm they may verify: from a JWKS
 * document, a PEM public key or certificate, or a shared secret. Each key is
 * bound to the algorithms its type allows and the provider's allowlist
 * permits, so a token can never pick an HMAC algorithm for a public key.
 */
import { importJWK, importSPKI, importX509, type JWK } from "jose";
import type { JwtAlgorithm } from "./schema.ts";

type Key = CryptoKey;

/** Algorithms a JWK's type can verify (before the allowlist). */
function algorithmsFor(jwk: JWK): JwtAlgorithm[] {
  switch (jwk.kty) {
    case "RSA":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "EC":
      return jwk.crv === "P-256"
        ? ["ES256"]
        : jwk.crv === "P-384"
        ? ["ES384"]
        : jwk.crv === "P-521"
        ? ["ES512"]
        : [];
    case "OKP":
      return jwk.crv === "Ed25519" ? ["EdDSA"] : [];
    default:
      // Symmetric (`oct`) keys never come from a key set: they would be public.
      return [];
  }
}

const HMAC_MIN_BYTES: Partial<Record<JwtAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 };

export class KeySet {
  /** kid -> alg -> keys: a JWKS may list one kid twice (RFC 7517 §4.5: a hint, not a name). */
  private readonly byKid = new Map<string, Map<string, Key[]>>();
  private readonly byAlg = new Map<string, Key[]>();

  get size(): number {
    let n = 0;
    for (const keys of this.byAlg.values()) n += keys.length;
    return n;
  }

  add(kid: string | undefined, alg: string, key: Key): void {
    if (kid !== undefined) {
      let m = this.byKid.get(kid);
      if (!m) this.byKid.set(kid, m = new Map());
      pushTo(m, alg, key);
    }
    pushTo(this.byAlg, alg, key);
  }

  /**
   * Keys that may verify a token with this header. `null` when the kid is not
   * in the set at all (a reason to refetch); an empty list when it is, but not
   * for this algorithm.
   */
  candidates(kid: string | undefined, alg: string): readonly Key[] | null {
    if (kid === undefined) return this.byAlg.get(alg) ?? [];
    const m = this.byKid.get(kid);
    if (!m) return null;
    return m.get(alg) ?? [];
  }

  /** Imports the usable keys of a JWKS document; says what it skipped and why. */
  static async fromJwks(
    doc: unknown,
    allowed: readonly JwtAlgorithm[],
  ): Promise<{ set: KeySet; skipped: string[] }> {
    const keys = (doc as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new Error('expected a JWKS document: {"keys": [...]}');
    const set = new KeySet();
    const skipped: string[] = [];
    for (const [i, jwk] of (keys as JWK[]).entries()) {
      const name = jwk?.kid ? `kid ${jwk.kid}` : `key ${i}`;
      if (typeof jwk !== "object" || jwk === null) {
        skipped.push(`${name}: not an object`);
        continue;
      }
      if (jwk.use !== undefined && jwk.use !== "sig") {
        skipped.push(`${name}: use is ${jwk.use}, not sig`);
        continue;
      }
      const fits = algorithmsFor(jwk).filter((a) => allowed.includes(a));
      const algs = jwk.alg === undefined ? fits : fits.filter((a) => a === jwk.alg);
      if (algs.length === 0) {
        skipped.push(`${name}: ${jwk.kty} ${jwk.alg ?? jwk.crv ?? ""} fits no allowed algorithm`);
        continue;
      }
      for (const alg of algs) {
        try {
          set.add(jwk.kid, alg, await importJWK(jwk, alg) as Key);
        } catch (e) {
          skipped.push(`${name}: ${(e as Error).message}`);
        }
      }
    }
    return { set, skipped };
  }

  /** Imports a PEM public key (SPKI) or certificate for every allowed algorithm it fits. */
  static async fromPem(pem: string, allowed: readonly JwtAlgorithm[]): Promise<KeySet> {
    const set = new KeySet();
    const isCert = pem.includes("BEGIN CERTIFICATE");
    for (const alg of allowed) {
      try {
        set.add(undefined, alg, isCert ? await importX509(pem, alg) : await importSPKI(pem, alg));
      } catch {
        // Not this key's type: the algorithm is not one it can verify.
      }
    }
    return set;
  }

  /** HMAC keys from a shared secret; an error message if it is too short for an algorithm. */
  static async fromSecret(
    secret: string,
    allowed: readonly JwtAlgorithm[],
  ): Promise<KeySet | string> {
    const bytes = new TextEncoder().encode(secret);
    const set = new KeySet();
    for (const alg of allowed) {
      const min = HMAC_MIN_BYTES[alg];
      if (min === undefined) continue;
      if (bytes.length < min) {
        return `expected a secret of at least ${min} bytes for ${alg} (RFC 7518 §3.2); got ${bytes.length}`;
      }
      const hash = `SHA-${alg.slice(2)}`;
      set.add(
        undefined,
        alg,
        await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash }, false, ["verify"]),
      );
    }
    return set;
  }
}

function pushTo(m: Map<string, Key[]>, alg: string, key: Key): void {
  const list = m.get(alg);
  if (list) list.push(key);
  else m.set(alg, [key]);
}
