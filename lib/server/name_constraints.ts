/**
 * Name constraints along a client certificate's path (RFC 5280 §4.2.1.10,
 * §6.1.3 b-c, §6.1.4 g): the NameConstraints of every CA on the path, the
 * configured one included, hold for every certificate below it, intermediates
 * as well as the client's. A name of a constrained form must lie in one of the
 * permitted subtrees of its form, when there are any, and in none of the
 * excluded ones; a form the CA does not constrain is not looked at, and a
 * certificate with no name of a constrained form passes that form.
 *
 * The names of a certificate: its SubjectAltName entries, its subject as a
 * directoryName (when it has any RDN), and the emailAddress attributes of its
 * subject as rfc822Names (as OpenSSL does; RFC 5280 asks it when there is no
 * SubjectAltName). The subject CN is not read as a dNSName: rustls/webpki does
 * not either (a CN is a person's or a service's name here, `john.doe` no host).
 *
 * Evaluated: dNSName, rfc822Name, uniformResourceIdentifier, iPAddress (v4 and
 * v6 ranges) and directoryName (name_forms.ts, directory_name.ts). Refused
 * whenever a CA constrains them (`UNSUPPORTED_CONSTRAINT_TYPE`): otherName,
 * x400Address, ediPartyName, registeredID. A subtree with a minimum or a
 * maximum is refused (`SUBTREE_MINMAX`), as RFC 5280 uses neither; so is
 * a malformed extension, constraint (`UNSUPPORTED_CONSTRAINT_SYNTAX`) or name
 * (`UNSUPPORTED_NAME_SYNTAX`). Violations are `PERMITTED_VIOLATION` and
 * `EXCLUDED_VIOLATION`, as OpenSSL names them.
 *
 * What the TLS layer refuses, refused here too: this check is the only one on
 * a resumed TLS session (client_cert_verifier.ts says why), so a path that
 * rustls/webpki refuses on a full handshake must not pass here. Deno 2.9.6's
 * rustls-webpki 0.103.13 does not evaluate three of the forms above, and
 * refuses instead (tests/auth/mtls_name_constraints_test.ts pins it): every
 * path through a CA with a directoryName constraint (it reads every
 * certificate's subject as one), and a certificate with an rfc822Name or a
 * uniformResourceIdentifier in its SubjectAltName under a CA that constrains
 * that form. `TLS_LAYER_REFUSES` holds these; drop a form from it once the
 * runtime's TLS layer evaluates it, and the pinned verdicts show it refuses
 * nothing this evaluation lets pass.
 */
import {
  childrenOf,
  contentOf,
  DER_TAG,
  type DerElement,
  DerError,
  expectTag,
  latin1Of,
} from "./der.ts";
import type { CertProfile } from "./cert_profile.ts";
import { dnWithin, rdnsOf } from "./directory_name.ts";
import {
  dnsConstraintOf,
  dnsNameOf,
  dnsWithin,
  emailConstraintOf,
  emailWithin,
  ipAddressOf,
  ipRangeOf,
  ipWithin,
  mailboxOf,
  uriConstraintOf,
  uriHostOf,
  uriWithin,
  type Within,
} from "./name_forms.ts";

/** GeneralName's forms, by their context tag number (RFC 5280 §4.2.1.6). */
const NAME_FORMS = [
  "otherName",
  "rfc822Name",
  "dNSName",
  "x400Address",
  "directoryName",
  "ediPartyName",
  "uniformResourceIdentifier",
  "iPAddress",
  "registeredID",
] as const;
export type NameForm = typeof NAME_FORMS[number];
const CONSTRUCTED_FORMS = new Set<NameForm>([
  "otherName",
  "x400Address",
  "directoryName",
  "ediPartyName",
]);

/** A GeneralName; a directoryName's value is the Name inside its explicit tag. */
export interface GeneralName {
  readonly form: NameForm;
  readonly value: DerElement;
}

/** A name a certificate presents; `inSan` when its SubjectAltName holds it. */
interface PresentedName extends GeneralName {
  readonly inSan: boolean;
}

/**
 * Forms rustls-webpki 0.103.13 (Deno 2.9.6's TLS layer) refuses rather than
 * evaluates: `always`, whenever a CA constrains the form; `inSan`, when a
 * certificate below also has a name of the form in its SubjectAltName.
 */
export const TLS_LAYER_REFUSES: Readonly<Partial<Record<NameForm, "always" | "inSan">>> = {
  directoryName: "always",
  rfc822Name: "inSan",
  uniformResourceIdentifier: "inSan",
};

/** A subtree, as a test of presented names: null when the name's syntax is not its form's. */
type Subtree = (name: DerElement) => Within | null;

/** Each evaluated form: how to read a name of it and a constraint, and how they compare. */
function rules<N, C>(
  name: (e: DerElement) => N | null,
  constraint: (e: DerElement) => C | null,
  within: (name: N, constraint: C) => Within,
): (base: DerElement) => Subtree | null {
  return (base) => {
    const c = constraint(base);
    if (c === null) return null;
    return (e) => {
      const n = name(e);
      return n === null ? null : within(n, c);
    };
  };
}

const ascii = (e: DerElement): string | null => {
  const bytes = contentOf(e);
  return bytes.every((b) => b < 0x80) ? latin1Of(bytes) : null;
};
const text = <T>(read: (s: string) => T | null) => (e: DerElement): T | null => {
  const s = ascii(e);
  return s === null ? null : read(s);
};

const EVALUATED: Partial<Record<NameForm, (base: DerElement) => Subtree | null>> = {
  dNSName: rules(text((s) => dnsNameOf(s, true)), text(dnsConstraintOf), dnsWithin),
  rfc822Name: rules(text(mailboxOf), text(emailConstraintOf), emailWithin),
  uniformResourceIdentifier: rules(text(uriHostOf), text(uriConstraintOf), uriWithin),
  iPAddress: rules((e) => ipAddressOf(contentOf(e)), (e) => ipRangeOf(contentOf(e)), ipWithin),
  directoryName: rules(nonEmptyRdns, rdnsOf, dnWithin),
};

function nonEmptyRdns(e: DerElement) {
  const rdns = rdnsOf(e);
  return rdns === null || rdns.length === 0 ? null : rdns;
}

/**
 * rustls/webpki stops at 250,000 comparisons of names with constraints on a
 * path; so does this check, and refuses (`UNSPECIFIED`, as OpenSSL names its
 * own such bound).
 */
const MAX_COMPARISONS = 250_000;

/**
 * Why the names on a path break the name constraints of its CAs; null when
 * they do not. `path`: the client's certificate, then the intermediates, then
 * the configured CA, each issued by the next.
 */
export function pathNameConstraintsError(path: readonly CertProfile[]): string | null {
  const budget = { left: MAX_COMPARISONS };
  for (let i = 1; i < path.length; i++) {
    const nc = path[i]!.nameConstraints;
    if (nc === null) continue;
    const error = constraintsError(nc, path.slice(0, i), budget);
    if (error) return error;
  }
  return null;
}

interface Compiled {
  readonly permitted: ReadonlyMap<NameForm, Subtree[]>;
  readonly excluded: ReadonlyMap<NameForm, Subtree[]>;
}

function constraintsError(
  nc: DerElement,
  below: readonly CertProfile[],
  budget: { left: number },
): string | null {
  const compiled = compileNameConstraints(nc);
  if (typeof compiled === "string") return compiled;
  const forms = new Set([...compiled.permitted.keys(), ...compiled.excluded.keys()]);
  const presented: PresentedName[] = [];
  for (const cert of below) {
    const names = namesOf(cert);
    if (names === null) return "UNSUPPORTED_NAME_SYNTAX";
    for (const name of names) if (forms.has(name.form)) presented.push(name);
  }
  for (const name of presented) {
    const error = nameError(name, compiled, budget);
    if (error) return error;
  }
  for (const form of forms) {
    const refusal = TLS_LAYER_REFUSES[form];
    if (
      refusal === "always" ||
      (refusal === "inSan" && presented.some((n) => n.inSan && n.form === form))
    ) {
      return "UNSUPPORTED_CONSTRAINT_TYPE";
    }
  }
  return null;
}

function nameError(name: PresentedName, c: Compiled, budget: { left: number }): string | null {
  const permitted = c.permitted.get(name.form) ?? [];
  const excluded = c.excluded.get(name.form) ?? [];
  budget.left -= permitted.length + excluded.length;
  if (budget.left < 0) return "UNSPECIFIED";
  const inPermitted = permitted.map((subtree) => subtree(name.value));
  const inExcluded = excluded.map((subtree) => subtree(name.value));
  if ([...inPermitted, ...inExcluded].includes(null)) return "UNSUPPORTED_NAME_SYNTAX";
  if (permitted.length > 0 && !inPermitted.includes("yes")) return "PERMITTED_VIOLATION";
  if (inExcluded.some((w) => w !== "no")) return "EXCLUDED_VIOLATION";
  return null;
}

/**
 * A NameConstraints extension's subtrees, by form; or why the path is refused
 * for it. Throws nothing: a malformed extension is an answer too.
 */
export function compileNameConstraints(nc: DerElement): Compiled | string {
  let subtrees: { permitted: GeneralName[]; excluded: GeneralName[] };
  try {
    subtrees = readNameConstraints(nc);
  } catch (e) {
    if (e instanceof SubtreeBounds) return "SUBTREE_MINMAX";
    if (e instanceof DerError) return "UNSUPPORTED_CONSTRAINT_SYNTAX";
    throw e;
  }
  const compiled = {
    permitted: new Map<NameForm, Subtree[]>(),
    excluded: new Map<NameForm, Subtree[]>(),
  };
  for (const kind of ["permitted", "excluded"] as const) {
    for (const base of subtrees[kind]) {
      const compile = EVALUATED[base.form];
      if (!compile) return "UNSUPPORTED_CONSTRAINT_TYPE";
      const subtree = compile(base.value);
      if (subtree === null) return "UNSUPPORTED_CONSTRAINT_SYNTAX";
      const list = compiled[kind].get(base.form) ?? [];
      list.push(subtree);
      compiled[kind].set(base.form, list);
    }
  }
  return compiled;
}

class SubtreeBounds extends DerError {}

/**
 * `NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL,
 * excludedSubtrees [1] GeneralSubtrees OPTIONAL }`, at least one present, none empty.
 */
function readNameConstraints(
  nc: DerElement,
): { permitted: GeneralName[]; excluded: GeneralName[] } {
  const parts = childrenOf(expectTag(nc, DER_TAG.sequence));
  let at = 0;
  const permitted = parts[at]?.tag === 0xa0 ? subtreesOf(parts[at++]!) : [];
  const excluded = parts[at]?.tag === 0xa1 ? subtreesOf(parts[at++]!) : [];
  if (at === 0 || at !== parts.length) throw new DerError("bad NameConstraints");
  return { permitted, excluded };
}

/** `GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL }`. */
function subtreesOf(tagged: DerElement): GeneralName[] {
  const subtrees = childrenOf(tagged);
  if (subtrees.length === 0) throw new DerError("no subtree");
  return subtrees.map((s) => {
    const [base, ...bounds] = childrenOf(expectTag(s, DER_TAG.sequence));
    if (!base) throw new DerError("empty subtree");
    if (bounds.length > 0) {
      if (bounds.length <= 2 && bounds.every((b) => b.tag === 0x80 || b.tag === 0x81)) {
        throw new SubtreeBounds("minimum or maximum");
      }
      throw new DerError("bad subtree");
    }
    return readGeneralName(base);
  });
}

/** A GeneralName in its context-tagged encoding; throws DerError on any other. */
export function readGeneralName(e: DerElement): GeneralName {
  const form = (e.tag & 0xc0) === 0x80 ? NAME_FORMS[e.tag & 0x1f] : undefined;
  if (!form || ((e.tag & 0x20) !== 0) !== CONSTRUCTED_FORMS.has(form)) {
    throw new DerError("not a GeneralName");
  }
  if (form !== "directoryName") return { form, value: e };
  const children = childrenOf(e);
  if (children.length !== 1) throw new DerError("bad directoryName");
  return { form, value: expectTag(children[0], DER_TAG.sequence) };
}

const EMAIL_ADDRESS = "1.2.840.113549.1.9.1";

/** The names `cert` presents (see the header); null when they are malformed. */
function namesOf(cert: CertProfile): PresentedName[] | null {
  try {
    const names: PresentedName[] = [];
    if (cert.subjectAltName) {
      for (const e of childrenOf(expectTag(cert.subjectAltName, DER_TAG.sequence))) {
        names.push({ ...readGeneralName(e), inSan: true });
      }
    }
    const rdns = rdnsOf(cert.subject);
    if (rdns === null) return null;
    if (rdns.length > 0) names.push({ form: "directoryName", value: cert.subject, inSan: false });
    for (const attribute of rdns.flatMap((rdn) => rdn.attributes)) {
      if (attribute.type !== EMAIL_ADDRESS) continue;
      names.push({ form: "rfc822Name", value: attribute.value, inSan: false });
    }
    return names;
  } catch (e) {
    if (e instanceof DerError) return null;
    throw e;
  }
}
