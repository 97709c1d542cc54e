/**
 * A minimal reader of DER (the encoding of X.509 certificates): enough to walk
 * a certificate's structure. Throws `DerError` on anything malformed.
 */

export class DerError extends Error {}

/** One encoded element: its tag byte, and where its content lies in `bytes`. */
export interface DerElement {
  readonly bytes: Uint8Array;
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

export const DER_TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  sequence: 0x30,
  set: 0x31,
} as const;

/** The element at `offset`; `limit` is where the enclosing content ends. */
export function readElement(bytes: Uint8Array, offset: number, limit = bytes.length): DerElement {
  if (offset + 2 > limit) throw new DerError("truncated element");
  const tag = bytes[offset]!;
  // Multi-byte tags do not occur in certificates.
  if ((tag & 0x1f) === 0x1f) throw new DerError("unsupported tag");
  const first = bytes[offset + 1]!;
  let start = offset + 2;
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw new DerError("bad length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new DerError("element overruns its container");
  return { bytes, tag, start, end };
}

/** The whole input as one element, with nothing after it. */
export function readRoot(bytes: Uint8Array): DerElement {
  const root = readElement(bytes, 0);
  if (root.end !== bytes.length) throw new DerError("trailing bytes");
  return root;
}

/** The elements inside a constructed element, in order. */
export function childrenOf(e: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let at = e.start; at < e.end;) {
    const child = readElement(e.bytes, at, e.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function expectTag(e: DerElement | undefined, tag: number): DerElement {
  if (!e || e.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}`);
  return e;
}

export function contentOf(e: DerElement): Uint8Array {
  return e.bytes.subarray(e.start, e.end);
}

/** Bytes as the characters U+0000 to U+00FF, one each (ASCII text stays as it is). */
export function latin1Of(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return out;
}

/** The one element inside an EXPLICIT tag, with nothing after it. */
export function onlyChildOf(e: DerElement): DerElement {
  const child = readElement(e.bytes, e.start, e.end);
  if (child.end !== e.end) throw new DerError("trailing bytes in explicit tag");
  return child;
}

/** A small non-negative INTEGER (versions, path lengths). */
export function readSmallInteger(e: DerElement): number {
  const content = contentOf(expectTag(e, DER_TAG.integer));
  if (content.length === 0 || content.length > 4 || content[0]! & 0x80) {
    throw new DerError("integer out of range");
  }
  return content.reduce((n, b) => n * 256 + b, 0);
}

export function readBoolean(e: DerElement): boolean {
  const content = contentOf(expectTag(e, DER_TAG.boolean));
  if (content.length !== 1) throw new DerError("bad boolean");
  return content[0] !== 0;
}

/** An OBJECT IDENTIFIER in dotted form, e.g. "2.5.29.19". */
export function readOid(e: DerElement): string {
  const content = contentOf(expectTag(e, DER_TAG.oid));
  if (content.length === 0 || content[content.length - 1]! & 0x80) throw new DerError("bad oid");
  const arcs: number[] = [];
  let arc = 0;
  for (const b of content) {
    arc = arc * 128 + (b & 0x7f);
    if (arc > Number.MAX_SAFE_INTEGER / 128) throw new DerError("oid arc too large");
    if (b & 0x80) continue;
    arcs.push(arc);
    arc = 0;
  }
  const first = Math.min(Math.floor(arcs[0]! / 40), 2);
  return [first, arcs[0]! - first * 40, ...arcs.slice(1)].join(".");
}

/**
 * A BIT STRING's named bits as a number whose bit i is the string's bit i
 * (bit 0 first on the wire), as KeyUsage numbers them. The first 16 bits only.
 */
export function readNamedBits(e: DerElement): number {
  const content = contentOf(expectTag(e, DER_TAG.bitString));
  if (content.length === 0 || content[0]! > 7) throw new DerError("bad bit string");
  let bits = 0;
  for (let i = 0; i < 16; i++) {
    const byte = content[1 + (i >> 3)] ?? 0;
    if (byte & (0x80 >> (i & 7))) bits |= 1 << i;
  }
  return bits;
}
