/** Byte-level helpers for HTTP/1.1 framing: ASCII fast paths, latin1 for the rest. */
export type Bytes = Uint8Array<ArrayBuffer>;

/**
 * Bytes as a string of one char (0-255) per byte: how heads are parsed, and
 * how a small body is kept (strings cost the V8 heap, not an ArrayBuffer).
 */
export type ByteString = string;

/**
 * A fixed-length body read whole up to this size is kept as a byte string
 * (see ParsedResponse). A bigger one is kept as bytes: its copy then costs
 * more than the ArrayBuffer does, and bytes past ASCII take a slow path
 * into a string.
 */
export const HELD_BODY_BYTES = 2048;

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

/**
 * A head (a byte string: header values cannot hold a char past 255) and an
 * optional body, in one new array. A head written at once goes through
 * `BufferedSocket.writeHead` instead, which reuses its connection's buffer.
 */
export function headWith(text: string, tail?: Uint8Array): Bytes {
  return fillHead(new Uint8Array(text.length + (tail?.length ?? 0)), text, tail);
}

/** Writes `text` (a byte string) then `tail` into `out` (which fits both); returns `out`. */
export function fillHead(out: Bytes, text: ByteString, tail: Uint8Array | undefined): Bytes {
  const n = text.length;
  // encodeInto copies ASCII at memcpy speed (a loop is 4x slower on a 300-byte
  // head); any other char takes more than one UTF-8 byte, which `written` shows.
  const { read, written } = encoder.encodeInto(text, out);
  if (read !== n || written !== n) { for (let i = 0; i < n; i++) out[i] = text.charCodeAt(i); }
  if (tail !== undefined) out.set(tail, n);
  return out;
}

/** Decodes bytes (a header block, a small body) as a byte string (ASCII fast path). */
export function toByteString(bytes: Uint8Array): ByteString {
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

/**
 * Whether buf[from, end) holds a LF that no CR precedes, in a head that
 * starts at `start` (a LF there has none before it). A loop over the range
 * only: `indexOf` would search the whole buffer past `end`, old bytes
 * included, and it runs before every read of a head (measured: twice the
 * instructions per request).
 */
export function hasBareLf(buf: Uint8Array, start: number, from: number, end: number): boolean {
  for (let i = from; i < end; i++) {
    if (buf[i] === 10 && (i === start || buf[i - 1] !== 13)) return true;
  }
  return false;
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
