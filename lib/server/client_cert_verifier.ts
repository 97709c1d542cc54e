/**
 * Verifies a client certificate chain against the listener's `client_ca`.
 *
 * Why the gateway checks itself instead of trusting `socket.authorized` alone:
 * Deno's `node:tls` reports a resumed TLS session as authorized whatever the
 * verdict of the handshake that created it, and session tickets are accepted
 * across listeners of one process. A client refused once would be let in on
 * its next connection, or on a listener with another CA. Measured on Deno
 * 2.9.6; see tests/auth/mtls_test.ts ("resumed sessions"). On a resumed
 * session this check is the only one, so it must refuse whatever the TLS
 * layer (rustls/webpki) refuses on a full handshake: a certificate the CA
 * issued for another use (a server's) must not pass as a client's.
 *
 * The check: every certificate on the path is within its validity period,
 * each is signed by the next, and the path ends at a configured CA. The leaf
 * and the intermediates are X.509 v3 with no critical extension left
 * unhandled, and their ExtendedKeyUsage, when present, lists clientAuth. The
 * leaf is not a CA, and its KeyUsage, when present, allows digitalSignature.
 * Intermediates are CAs whose KeyUsage, when present, allows keyCertSign; the
 * pathLenConstraint and the name constraints of every CA on the path, the
 * configured one included, hold (name_constraints.ts, which also refuses what
 * the TLS layer refuses there). Errors are named as OpenSSL names them.
 */
import { X509Certificate } from "node:crypto";
import { type CertProfile, certProfileOf, KEY_USAGE, OID } from "./cert_profile.ts";
import { pathNameConstraintsError } from "./name_constraints.ts";

const MAX_DEPTH = 8;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A certificate parsed once per verification: for signatures and for its profile. */
interface ParsedCert {
  readonly x509: X509Certificate;
  readonly profile: CertProfile;
}

/** The leaf, the intermediates that link it to a configured CA, and that CA. */
interface CertPath {
  readonly leaf: ParsedCert;
  readonly intermediates: readonly ParsedCert[];
  readonly anchor: ParsedCert;
}

export class ClientCertVerifier {
  private readonly anchors: ParsedCert[];

  /** `pem`: one or more CA certificates. Throws if it holds none, or an unreadable one. */
  constructor(pem: string) {
    this.anchors = (pem.match(PEM_BLOCK) ?? []).map(parseAnchor);
    if (this.anchors.length === 0) throw new Error("client_ca holds no PEM certificate");
  }

  /**
   * Null when `leaf` chains to a configured CA at `nowMs` and may authenticate
   * a TLS client; otherwise why not.
   * `presented`: other certificates the peer sent, candidates for intermediates.
   */
  verify(leaf: Uint8Array, presented: readonly Uint8Array[], nowMs: number): string | null {
    let parsed: ParsedCert[];
    try {
      parsed = [leaf, ...presented].map(parseCert);
    } catch {
      return "CERT_UNPARSEABLE";
    }
    const path = this.pathFrom(parsed[0]!, parsed.slice(1));
    if (typeof path === "string") return path;
    return validityErrorOnPath(path, nowMs) ?? leafError(path.leaf.profile) ??
      issuersError(path) ?? namesError(path);
  }

  /** The path from `leaf` to a configured CA through `pool`; otherwise why there is none. */
  private pathFrom(leaf: ParsedCert, pool: readonly ParsedCert[]): CertPath | string {
    const intermediates: ParsedCert[] = [];
    let current = leaf;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const issuedBy = (c: ParsedCert) =>
        current.x509.checkIssued(c.x509) && current.x509.verify(c.x509.publicKey);
      const anchor = this.anchors.find(issuedBy);
      if (anchor) return { leaf, intermediates, anchor };
      const next = pool.find((c) => c.profile.ca && c !== current && issuedBy(c));
      if (!next) {
        return depth === 0
          ? "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
          : "UNABLE_TO_GET_ISSUER_CERT_LOCALLY";
      }
      intermediates.push(next);
      current = next;
    }
    return "CERT_CHAIN_TOO_LONG";
  }
}

function parseAnchor(pem: string): ParsedCert {
  const x509 = new X509Certificate(pem);
  try {
    return { x509, profile: certProfileOf(x509.raw) };
  } catch (e) {
    throw new Error(`client_ca: cannot read the extensions of ${x509.subject} (${e})`);
  }
}

function parseCert(der: Uint8Array): ParsedCert {
  return { x509: new X509Certificate(der), profile: certProfileOf(der) };
}

function validityErrorOnPath(path: CertPath, nowMs: number): string | null {
  for (const c of [path.leaf, ...path.intermediates, path.anchor]) {
    const error = validityError(c.x509, nowMs);
    if (error) return error;
  }
  return null;
}

function validityError(c: X509Certificate, nowMs: number): string | null {
  if (nowMs < Date.parse(c.validFrom)) return "CERT_NOT_YET_VALID";
  if (nowMs > Date.parse(c.validTo)) return "CERT_HAS_EXPIRED";
  return null;
}

/** Why the peer's own certificate may not authenticate a TLS client; null when it may. */
function leafError(p: CertProfile): string | null {
  const shared = untrustedProfileError(p);
  if (shared) return shared;
  // webpki refuses a CA certificate as an end entity.
  if (p.ca) return "INVALID_PURPOSE";
  if (p.keyUsage !== null && !(p.keyUsage & KEY_USAGE.digitalSignature)) {
    return "KEYUSAGE_NO_DIGITAL_SIGNATURE";
  }
  return null;
}

/** What the leaf and the intermediates (certificates the peer sent) must all satisfy. */
function untrustedProfileError(p: CertProfile): string | null {
  if (p.version !== 3) return "UNSUPPORTED_CERT_VERSION";
  if (p.unhandledCritical !== null) return "UNHANDLED_CRITICAL_EXTENSION";
  // anyExtendedKeyUsage alone does not do: rustls/webpki refuse it on a full handshake (so
  // does OpenSSL), and a resumed session must not accept what the full handshake refused.
  if (p.extKeyUsage !== null && !p.extKeyUsage.includes(OID.clientAuth)) return "INVALID_PURPOSE";
  return null;
}

/** Why an issuer on the path (intermediates, then the configured CA) may not issue below it. */
function issuersError(path: CertPath): string | null {
  for (const [below, c] of path.intermediates.entries()) {
    const error = intermediateError(c.profile, below);
    if (error) return error;
  }
  // A configured CA is trusted as a CA whatever its own extensions say; its limits still apply.
  return caLimitsError(path.anchor.profile, path.intermediates.length);
}

/**
 * `below`: how many intermediates lie between this one and the leaf. Being a CA
 * is a condition of `pathFrom`'s already.
 */
function intermediateError(p: CertProfile, below: number): string | null {
  const shared = untrustedProfileError(p);
  if (shared) return shared;
  if (p.keyUsage !== null && !(p.keyUsage & KEY_USAGE.keyCertSign)) return "KEYUSAGE_NO_CERTSIGN";
  return caLimitsError(p, below);
}

/** `below`: how many intermediates lie between this CA and the leaf. */
function caLimitsError(p: CertProfile, below: number): string | null {
  if (p.pathLen !== null && below > p.pathLen) return "PATH_LENGTH_EXCEEDED";
  return null;
}

/** Why the names on the path break a CA's name constraints; null when they do not. */
function namesError(path: CertPath): string | null {
  const certs = [path.leaf, ...path.intermediates, path.anchor];
  try {
    return pathNameConstraintsError(certs.map((c) => c.profile));
  } catch {
    // Not expected (malformed input is an answer there): refused rather than let through.
    return "UNSPECIFIED";
  }
}
