/**
 * What a certificate says about its own use (RFC 5280 §4.1, §4.2), read from
 * its DER: the version and the extensions a client certificate check needs.
 * Deno's `node:crypto` `X509Certificate` exposes neither the version nor the
 * key usages (its `keyUsage` is undefined), hence this reader. The names and
 * the name constraints are kept as they are encoded: name_constraints.ts reads
 * them when a constraint applies.
 */
import {
  childrenOf,
  contentOf,
  DER_TAG,
  type DerElement,
  DerError,
  expectTag,
  onlyChildOf,
  readBoolean,
  readNamedBits,
  readOid,
  readRoot,
  readSmallInteger,
} from "./der.ts";

export const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  nameConstraints: "2.5.29.30",
  certificatePolicies: "2.5.29.32",
  policyConstraints: "2.5.29.36",
  inhibitAnyPolicy: "2.5.29.54",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

/** Critical extensions a certificate may carry and still be accepted. */
const UNDERSTOOD_CRITICAL = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  OID.certificatePolicies,
  OID.policyConstraints,
  OID.inhibitAnyPolicy,
]);

export const KEY_USAGE = { digitalSignature: 1 << 0, keyCertSign: 1 << 5 } as const;

export interface CertProfile {
  /** 1, 2 or 3 (X.509 v3). */
  readonly version: number;
  /** basicConstraints cA. */
  readonly ca: boolean;
  /** basicConstraints pathLenConstraint; null when absent. */
  readonly pathLen: number | null;
  /** KeyUsage bits (bit 0 digitalSignature); null when the extension is absent. */
  readonly keyUsage: number | null;
  /** ExtendedKeyUsage purposes (OIDs); null when the extension is absent. */
  readonly extKeyUsage: readonly string[] | null;
  /** The subject Name (a SEQUENCE of RDNs). */
  readonly subject: DerElement;
  /** The SubjectAltName extension's GeneralNames; null when absent. */
  readonly subjectAltName: DerElement | null;
  /** The NameConstraints extension's value; null when absent. */
  readonly nameConstraints: DerElement | null;
  /** The first critical extension not in the understood set; null when none. */
  readonly unhandledCritical: string | null;
}

interface Extension {
  oid: string;
  critical: boolean;
  value: DerElement;
}

/** Throws `DerError` when `der` is not a well-formed certificate. */
export function certProfileOf(der: Uint8Array): CertProfile {
  const tbs = expectTag(
    childrenOf(expectTag(readRoot(der), DER_TAG.sequence))[0],
    DER_TAG.sequence,
  );
  const fields = childrenOf(tbs);
  const extensions = extensionsOf(fields);
  const byOid = new Map<string, Extension>();
  for (const ext of extensions) {
    // RFC 5280 §4.2: an extension appears at most once.
    if (byOid.has(ext.oid)) throw new DerError(`extension ${ext.oid} twice`);
    byOid.set(ext.oid, ext);
  }
  const constraints = basicConstraintsOf(byOid.get(OID.basicConstraints));
  const keyUsage = byOid.get(OID.keyUsage);
  const extKeyUsage = byOid.get(OID.extKeyUsage);
  return {
    version: versionOf(fields),
    ...constraints,
    keyUsage: keyUsage ? readNamedBits(keyUsage.value) : null,
    extKeyUsage: extKeyUsage ? childrenOf(expectSequence(extKeyUsage.value)).map(readOid) : null,
    subject: subjectOf(fields),
    subjectAltName: byOid.get(OID.subjectAltName)?.value ?? null,
    nameConstraints: byOid.get(OID.nameConstraints)?.value ?? null,
    unhandledCritical: extensions.find((e) => e.critical && !UNDERSTOOD_CRITICAL.has(e.oid))?.oid ??
      null,
  };
}

/** TBSCertificate's `[0] EXPLICIT Version DEFAULT v1`, as 1, 2 or 3. */
function versionOf(fields: readonly DerElement[]): number {
  const first = fields[0];
  if (!first || first.tag !== 0xa0) return 1;
  const version = readSmallInteger(onlyChildOf(first)) + 1;
  if (version > 3) throw new DerError("unknown version");
  return version;
}

/** TBSCertificate's subject: after the version (when present), serial, signature, issuer, validity. */
function subjectOf(fields: readonly DerElement[]): DerElement {
  const skipped = fields[0]?.tag === 0xa0 ? 5 : 4;
  return expectTag(fields[skipped], DER_TAG.sequence);
}

/** TBSCertificate's `[3] EXPLICIT Extensions`; none when absent. */
function extensionsOf(fields: readonly DerElement[]): Extension[] {
  const tagged = fields.find((f) => f.tag === 0xa3);
  if (!tagged) return [];
  return childrenOf(expectSequence(onlyChildOf(tagged))).map((ext) => {
    const parts = childrenOf(expectSequence(ext));
    if (parts.length < 2 || parts.length > 3) throw new DerError("bad extension");
    const critical = parts.length === 3 ? readBoolean(parts[1]!) : false;
    const wrapped = expectTag(parts[parts.length - 1], DER_TAG.octetString);
    return { oid: readOid(parts[0]!), critical, value: readRoot(contentOf(wrapped)) };
  });
}

function basicConstraintsOf(ext: Extension | undefined): { ca: boolean; pathLen: number | null } {
  if (!ext) return { ca: false, pathLen: null };
  const parts = childrenOf(expectSequence(ext.value));
  const ca = parts[0]?.tag === DER_TAG.boolean ? readBoolean(parts[0]) : false;
  const last = parts[parts.length - 1];
  return { ca, pathLen: last?.tag === DER_TAG.integer ? readSmallInteger(last) : null };
}

function expectSequence(e: DerElement): DerElement {
  return expectTag(e, DER_TAG.sequence);
}
