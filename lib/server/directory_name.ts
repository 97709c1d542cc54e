/**
 * Distinguished names against directoryName constraints (RFC 5280 §4.2.1.10,
 * §7.1): a name lies in a constraint's subtree when the constraint's RDNs
 * begin it, one by one.
 *
 * How two RDNs compare: `yes` when their DER encodings are the same bytes
 * (DER sorts the attributes of an RDN, so the same attributes with the same
 * encoded values give the same bytes). `maybe` when they differ in bytes but
 * hold the same attribute types with values that are the same text after the
 * caseless matching RFC 4518 approximates (any string type decoded, Unicode
 * NFKC, lower case, runs of white space as one space, none at the ends):
 * `O=Acme` as a UTF8String and `o=ACME ` as a PrintableString. A permitted
 * subtree takes only `yes`, an excluded one is hit by `maybe` too: a name
 * that is another encoding of an excluded one stays out, and a permitted
 * subtree lets in only what it spells.
 */
import {
  childrenOf,
  contentOf,
  DER_TAG,
  type DerElement,
  DerError,
  expectTag,
  latin1Of,
  readOid,
} from "./der.ts";
import type { Within } from "./name_forms.ts";

/** One attribute of an RDN: its type (an OID) and its encoded value. */
export interface Attribute {
  readonly type: string;
  readonly value: DerElement;
}

export interface Rdn {
  /** The content of the RDN's SET: its attributes, in DER order. */
  readonly encoded: Uint8Array;
  readonly attributes: readonly Attribute[];
}

/** Bounds well above real names, which hold a handful of RDNs of one attribute each. */
const MAX_RDNS = 64;
const MAX_ATTRIBUTES = 16;

/** The RDNs of a Name (`SEQUENCE OF SET OF SEQUENCE { type, value }`); null when malformed. */
export function rdnsOf(name: DerElement): Rdn[] | null {
  try {
    const rdns = childrenOf(expectTag(name, DER_TAG.sequence));
    if (rdns.length > MAX_RDNS) return null;
    return rdns.map((rdn) => {
      const attributes = childrenOf(expectTag(rdn, DER_TAG.set));
      if (attributes.length === 0 || attributes.length > MAX_ATTRIBUTES) {
        throw new DerError("bad RDN");
      }
      return { encoded: contentOf(rdn), attributes: attributes.map(attributeOf) };
    });
  } catch (e) {
    if (e instanceof DerError) return null;
    throw e;
  }
}

function attributeOf(e: DerElement): Attribute {
  const parts = childrenOf(expectTag(e, DER_TAG.sequence));
  if (parts.length !== 2) throw new DerError("bad attribute");
  return { type: readOid(parts[0]!), value: parts[1]! };
}

/** Whether `name` lies in the subtree of `constraint`; an empty constraint holds every name. */
export function dnWithin(name: readonly Rdn[], constraint: readonly Rdn[]): Within {
  if (constraint.length > name.length) return "no";
  let answer: Within = "yes";
  for (const [i, c] of constraint.entries()) {
    const n = name[i]!;
    if (sameBytes(n.encoded, c.encoded)) continue;
    if (!alikeRdns(n, c)) return "no";
    answer = "maybe";
  }
  return answer;
}

/** The same number of attributes, each of `c`'s alike to one of `n`'s not taken yet. */
function alikeRdns(n: Rdn, c: Rdn): boolean {
  if (n.attributes.length !== c.attributes.length) return false;
  const taken = new Set<number>();
  return c.attributes.every((ca) => {
    const i = n.attributes.findIndex((na, j) =>
      !taken.has(j) && na.type === ca.type && alikeValues(na.value, ca.value)
    );
    if (i >= 0) taken.add(i);
    return i >= 0;
  });
}

function alikeValues(a: DerElement, b: DerElement): boolean {
  const [ta, tb] = [textOf(a), textOf(b)];
  if (ta !== null && tb !== null) return caseless(ta) === caseless(tb);
  return a.tag === b.tag && sameBytes(contentOf(a), contentOf(b));
}

function caseless(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

const STRING_TAG = {
  utf8: 0x0c,
  printable: 0x13,
  teletex: 0x14,
  ia5: 0x16,
  visible: 0x1a,
  universal: 0x1c,
  bmp: 0x1e,
} as const;

/** A string-typed attribute value's text; null for other types or an undecodable value. */
export function textOf(e: DerElement): string | null {
  const bytes = contentOf(e);
  try {
    switch (e.tag) {
      case STRING_TAG.utf8:
        return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      case STRING_TAG.bmp:
        return new TextDecoder("utf-16be", { fatal: true }).decode(bytes);
      case STRING_TAG.universal: {
        if (bytes.length % 4 !== 0) return null;
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
        let out = "";
        for (let i = 0; i < bytes.length; i += 4) out += String.fromCodePoint(view.getUint32(i));
        return out;
      }
      case STRING_TAG.printable:
      case STRING_TAG.teletex:
      case STRING_TAG.ia5:
      case STRING_TAG.visible:
        return latin1Of(bytes);
      default:
        return null;
    }
  } catch {
    // Invalid UTF-8 or UTF-16, or a code point past U+10FFFF.
    return null;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
