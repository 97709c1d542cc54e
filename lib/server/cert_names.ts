/**
 * The SubjectAltName entries a client certificate's identity is taken from
 * (URIs, DNS names, emails), read from its DER. Node's `subjectaltname` text
 * does not do: Deno writes it unquoted, so an email SAN or a directoryName
 * holding `, URI:spiffe://...` reads there as one more SAN entry.
 */
import { certProfileOf } from "./cert_profile.ts";
import { childrenOf, contentOf, DER_TAG, DerError, expectTag, latin1Of } from "./der.ts";
import { type NameForm, readGeneralName } from "./name_constraints.ts";
import type { ClientCertificate } from "../core/context.ts";

type Sans = ClientCertificate["sans"];

const LISTS: Readonly<Partial<Record<NameForm, keyof Sans>>> = {
  uniformResourceIdentifier: "uris",
  dNSName: "dns",
  rfc822Name: "emails",
};

/** The certificate's URI, DNS and email SANs, in order; none when it has none or is malformed. */
export function subjectAltNamesOf(der: Uint8Array): Sans {
  const sans: Sans = { uris: [], dns: [], emails: [] };
  try {
    const san = certProfileOf(der).subjectAltName;
    if (san === null) return sans;
    for (const e of childrenOf(expectTag(san, DER_TAG.sequence))) {
      const name = readGeneralName(e);
      const list = LISTS[name.form];
      const bytes = contentOf(name.value);
      // IA5String: ASCII only. Anything else is no name an upstream should be told.
      if (list && bytes.every((b) => b < 0x80)) sans[list].push(latin1Of(bytes));
    }
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
  }
  return sans;
}
