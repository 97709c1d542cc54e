/** Byte-level helpers for HTTP/1.1 framing: ASCII fast paths, latin1 for the rest. */
export type Bytes = Uint8Array<ArrayBuffer>;

/**
 * A connection's read buffer: unconsumed bytes are buf[start, end); `fill`
 * reads more (0 at the end); `readInto` moves the next bytes into the
 * caller's memory (null at the end).
 */
export interface ReadBuffer {
  buf: Uint8Array;
  start: number;
  end: number;
  fill(): Promise<number>;
  readInto(into: Uint8Array): Promise<number | null>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a header block; header values are byte strings (latin1), not UTF-8. */
export function encodeHead(text: string): Uint8Array {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return encoder.encode(text);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/**
 * A head (a byte string: header values cannot hold a char past 255) and an
 * optional body, in one array for one write. A plain loop: measured at half
 * the cost of TextEncoder plus a copy for a typical head.
 */
export function headWith(text: string, tail?: Uint8Array): Bytes {
  const n = text.length;
  const out = new Uint8Array(n + (tail?.length ?? 0));
  for (let i = 0; i < n; i++) out[i] = text.charCodeAt(i);
  if (tail) out.set(tail, n);
  return out;
}

/** Decodes a header block as latin1 (ASCII fast path). */
export function decodeHead(bytes: Uint8Array): string {
  // Each UTF-16 unit decodes from at least one byte, and a lone byte past ASCII
  // becomes U+FFFD: the same length and no U+FFFD means every byte was ASCII.
  const ascii = decoder.decode(bytes);
  if (ascii.length === bytes.length && ascii.indexOf("\uFFFD") < 0) return ascii;
  let s = "";
  for (let j = 0; j < bytes.length; j += 8192) {
    s += String.fromCharCode(...bytes.subarray(j, Math.min(bytes.length, j + 8192)));
  }
  return s;
}

// The searches below look at the last byte a match would cover and skip every
// start that byte rules out (a byte that is neither CR nor LF rules out all):
// a head holding a bearer token is mostly such bytes, read one in four.

/** Index of the first CRLFCRLF at or after `from`, or -1. */
export function findHeadEnd(buf: Uint8Array, from: number, end: number): number {
  let i = from;
  while (i + 3 < end) {
    const last = buf[i + 3];
    if (last === 10) {
      if (buf[i + 2] === 13 && buf[i + 1] === 10 && buf[i] === 13) return i;
      i += 2;
    } else if (last === 13) i += 1;
    else i += 4;
  }
  return -1;
}

/** Index of the first CRLF at or after `from`, or -1. */
export function findLineEnd(buf: Uint8Array, from: number, end: number): number {
  let i = from;
  while (i + 1 < end) {
    const last = buf[i + 1];
    if (last === 10) {
      if (buf[i] === 13) return i;
      i += 2;
    } else if (last === 13) i += 1;
    else i += 2;
  }
  return -1;
}

export const CRLF = encoder.encode("\r\n");
export const LAST_CHUNK = encoder.encode("0\r\n\r\n");
export function chunkHeader(size: number): Uint8Array {
  return encoder.encode(size.toString(16) + "\r\n");
}

/** `chunks` joined into one array (`total`: their summed length); a single chunk as is. */
export function concat(chunks: readonly Bytes[], total: number): Bytes {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
