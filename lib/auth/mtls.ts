/**
 * `kind: mtls`: the caller is the client certificate the listener verified
 * against its `client_ca` (see lib/server/mtls_listener.ts). The consumer comes
 * from the subject CN or a SAN (URI, DNS name, email), as configured.
 */
import type { ClientCertificate, RequestContext } from "../core/context.ts";
import { BoundedMap } from "./bounded_map.ts";
import type { ConsumerTable, ProviderSubjects } from "./consumers.ts";
import { IdentityHeaders } from "./identity.ts";
import {
  type Authenticated,
  type AuthProvider,
  type AuthResult,
  type Refusal,
  refusal,
} from "./provider.ts";
import type { MtlsProviderConfig } from "./schema.ts";

const NO_IDENTITY = refusal(
  "invalid_client_certificate",
  "no_identity",
  "The client certificate names no identity this gateway maps to a consumer",
);

/** A presented certificate the TLS layer did not trust (`CERT_HAS_EXPIRED`, unknown CA). */
export function untrustedCertificate(why: string): Refusal {
  return refusal(
    "invalid_client_certificate",
    why.toLowerCase(),
    `The client certificate is not trusted (${why})`,
  );
}

export class MtlsProvider implements AuthProvider {
  readonly challenge: string;
  private readonly headers: IdentityHeaders;
  /** Certificates seen, by fingerprint: a connection's requests share one identity. */
  private readonly seen = new BoundedMap<string, Authenticated>(10_000);
  private readonly subjects: ProviderSubjects;

  constructor(
    readonly name: string,
    private readonly cfg: MtlsProviderConfig,
    consumers: ConsumerTable,
  ) {
    this.challenge = `Certificate realm="${cfg.realm}"`;
    this.subjects = consumers.subjectsOf(name);
    this.headers = new IdentityHeaders(cfg.identity_headers, cfg.claims_to_headers);
  }

  authenticate(ctx: RequestContext): AuthResult | null {
    const cert = ctx.clientCert;
    if (cert === null) {
      const why = ctx.clientCertError;
      return why === null ? null : untrustedCertificate(why);
    }
    const hit = this.seen.get(cert.fingerprint256);
    if (hit) return hit;
    const subject = this.identityOf(cert);
    if (subject === null) return NO_IDENTITY;
    const consumer = this.subjects.forSubject(subject);
    const result = this.headers.authenticated({
      provider: this.name,
      subject,
      // A certificate carries no scopes: its consumer's configured ones apply.
      scopes: consumer.scopes,
      claims: {
        subject_cn: cert.subjectCN,
        san_uri: cert.sans.uris,
        san_dns: cert.sans.dns,
        san_email: cert.sans.emails,
        fingerprint256: cert.fingerprint256,
        valid_to: cert.validTo,
      },
    }, consumer);
    this.seen.set(cert.fingerprint256, result);
    return result;
  }

  stripCredentials(): void {
    // The certificate is not forwarded: nothing to strip.
  }

  private identityOf(cert: ClientCertificate): string | null {
    switch (this.cfg.consumer_from) {
      case "subject_cn":
        return cert.subjectCN;
      case "san_uri": {
        const prefix = this.cfg.san_uri_prefix;
        return cert.sans.uris.find((u) => prefix === undefined || u.startsWith(prefix)) ?? null;
      }
      case "san_dns":
        return cert.sans.dns[0] ?? null;
      case "san_email":
        return cert.sans.emails[0] ?? null;
    }
  }
}
