/**
 * Verifies a client certificate chain against the listener's `client_ca`.
 *
 * Why the gateway checks itself instead of trusting `socket.authorized` alone:
 * Deno's `node:tls` reports a resumed TLS session as authorized whatever the
 * verdict of the handshake that created it, and session tickets are accepted
 * across listeners of one process. A client refused once would be let in on
 * its next connection, or on a listener with another CA. Measured on Deno
 * 2.9.6; see tests/auth/mtls_test.ts ("resumed sessions").
 *
 * The check: every certificate on the path is within its validity period,
 * each is signed by the next, intermediates are CA certificates, and the path
 * ends at a configured CA. Errors are named as OpenSSL names them.
 */
import { X509Certificate } from "node:crypto";

const MAX_DEPTH = 8;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export class ClientCertVerifier {
  private readonly anchors: X509Certificate[];

  /** `pem`: one or more CA certificates. Throws if it holds none. */
  constructor(pem: string) {
    this.anchors = (pem.match(PEM_BLOCK) ?? []).map((block) => new X509Certificate(block));
    if (this.anchors.length === 0) throw new Error("client_ca holds no PEM certificate");
  }

  /**
   * Null when `leaf` chains to a configured CA at `nowMs`; otherwise why not.
   * `presented`: other certificates the peer sent, candidates for intermediates.
   */
  verify(leaf: Uint8Array, presented: readonly Uint8Array[], nowMs: number): string | null {
    let current: X509Certificate;
    let pool: X509Certificate[];
    try {
      current = new X509Certificate(leaf);
      pool = presented.map((der) => new X509Certificate(der));
    } catch {
      return "CERT_UNPARSEABLE";
    }
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const timing = validityError(current, nowMs);
      if (timing) return timing;
      const issuedBy = (c: X509Certificate) =>
        current.checkIssued(c) && current.verify(c.publicKey);
      const anchor = this.anchors.find(issuedBy);
      if (anchor) return validityError(anchor, nowMs);
      const next = pool.find((c) => c.ca && c !== current && issuedBy(c));
      if (!next) {
        return depth === 0
          ? "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
          : "UNABLE_TO_GET_ISSUER_CERT_LOCALLY";
      }
      current = next;
    }
    return "CERT_CHAIN_TOO_LONG";
  }
}

function validityError(c: X509Certificate, nowMs: number): string | null {
  if (nowMs < Date.parse(c.validFrom)) return "CERT_NOT_YET_VALID";
  if (nowMs > Date.parse(c.validTo)) return "CERT_HAS_EXPIRED";
  return null;
}
