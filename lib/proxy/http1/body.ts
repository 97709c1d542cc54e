/**
 * Response bodies: a fully buffered body becomes bytes at once (the common small
 * response costs no stream); anything else streams with back-pressure, reading
 * from the socket only when the consumer pulls.
 */
import {
  type Bytes,
  type ByteString,
  concat,
  findLineEnd,
  HELD_BODY_BYTES,
  type ReadBuffer,
  toByteString,
} from "./bytes.ts";
import type { UpstreamConnection } from "./connection.ts";
import { ProtocolError, type ResponseHead } from "./response_head.ts";

const STREAM_CHUNK = 64 * 1024;

/**
 * Called once when the body is done: `reusable` if the connection can serve another request.
 * For a failure, returns what the body's reader is given: the failure as the exchange classifies
 * it (an `UpstreamError`: a timeout, the upstream breaking off, the client gone).
 */
export type BodyDone = (reusable: boolean, error?: unknown) => unknown;

/**
 * A response's body by its framing: the bytes when all of it is buffered
 * already, a stream otherwise, null when the response has none. `done` runs
 * once the body has been read (at once when it was buffered or absent).
 */
export function responseBody(
  conn: UpstreamConnection,
  head: ResponseHead,
  method: string,
  done: BodyDone,
): Bytes | ByteString | ReadableStream<Bytes> | null {
  const keep = !head.close;
  if (method === "HEAD" || head.status === 204 || head.status === 304) {
    done(keep && !announcesBody(head), null);
    return null;
  }
  if (head.chunked) {
    const whole = takeBufferedChunked(conn);
    if (whole !== null) {
      done(keep, null);
      return whole;
    }
    return chunkedStream(conn, done, keep);
  }
  if (head.contentLength !== null) {
    const whole = takeBufferedBody(conn, head.contentLength, head.after);
    // Not `if (whole)`: an empty body is "", which is falsy.
    if (whole !== null) {
      done(keep, null);
      return whole;
    }
    return fixedLengthStream(conn, head.contentLength, done, keep);
  }
  return untilCloseStream(conn, (_r, e) => done(false, e));
}

/**
 * A 204 with a body's framing, which RFC 9110 §8.6 and RFC 9112 §6.1 forbid
 * there. The answer still ends at its head (RFC 9112 §6.3), but such an
 * upstream tends to send the body as well: arriving late, it would be read as
 * the answer to the next request on the connection, so that is not reused.
 */
function announcesBody(head: ResponseHead): boolean {
  return head.status === 204 && (head.chunked || (head.contentLength ?? 0) > 0);
}

/** The whole fixed-length body if it is already buffered, else null. */
export function takeBufferedBody(
  conn: UpstreamConnection,
  length: number,
  decoded: ByteString | null = null,
): Bytes | ByteString | null {
  const start = conn.start;
  if (conn.end - start < length) return null;
  conn.start += length;
  if (length > HELD_BODY_BYTES) return conn.buf.slice(start, start + length);
  if (decoded !== null && decoded.length >= length) {
    return decoded.length === length ? decoded : decoded.slice(0, length);
  }
  return toByteString(conn.buf.subarray(start, start + length));
}

/**
 * Fills `into` with the next body bytes; returns how many, 0 at the end of
 * the body. Throws when the upstream breaks off.
 */
type FillBody = (into: Bytes) => Promise<number>;

/**
 * A byte stream over `fill`: a BYOB reader (the response writer) gets the
 * body read straight into its one reused buffer, so a large download leaves
 * no garbage per piece; a default reader gets pieces of their exact size.
 */
function stream(
  fill: FillBody,
  conn: UpstreamConnection,
  done: BodyDone,
  reusableAtEnd: () => boolean,
): ReadableStream<Bytes> {
  let finished = false;
  let scratch: Bytes | null = null;
  const finish = (reusable: boolean, error?: unknown): unknown => {
    if (finished) return error;
    finished = true;
    return done(reusable, error) ?? error;
  };
  return new ReadableStream({
    type: "bytes",
    async pull(c) {
      const request = c.byobRequest;
      const view = request?.view;
      try {
        let n: number;
        if (view) {
          n = await fill(
            new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength),
          );
          if (n > 0) request!.respond(n);
        } else {
          // Starts at 16 KiB and doubles while reads fill it, as the response writer's buffer does.
          scratch ??= new Uint8Array(STREAM_CHUNK / 4);
          n = await fill(scratch);
          if (n > 0) c.enqueue(scratch.slice(0, n));
          if (n === scratch.length && n < STREAM_CHUNK) scratch = new Uint8Array(n * 2);
        }
        if (n === 0) {
          c.close();
          request?.respond(0);
          finish(reusableAtEnd());
        }
      } catch (e) {
        conn.close();
        c.error(finish(false, e));
      }
    },
    cancel(reason) {
      // The client went away: this connection is mid-message and cannot be reused.
      conn.close();
      finish(false, reason ?? new Error("Response body cancelled"));
    },
  }, { highWaterMark: 0 });
}

/** Streams a body of known length. */
export function fixedLengthStream(
  conn: UpstreamConnection,
  length: number,
  done: BodyDone,
  reusable: boolean,
): ReadableStream<Bytes> {
  let remaining = length;
  return stream(
    async (into) => {
      if (remaining === 0) return 0;
      const n = await conn.readInto(into.subarray(0, Math.min(into.length, remaining)));
      if (!n) throw new ProtocolError("Upstream closed the connection inside a body");
      remaining -= n;
      return n;
    },
    conn,
    done,
    () => reusable && remaining === 0,
  );
}

/** Streams a body delimited by the connection closing (no framing). */
export function untilCloseStream(
  conn: UpstreamConnection,
  done: BodyDone,
): ReadableStream<Bytes> {
  return stream(async (into) => await conn.readInto(into) ?? 0, conn, done, () => false);
}

const enum Chunked {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

const MAX_CHUNK_LINE = 4096;
/** Trailer fields are read and dropped, bounded as a request head is. */
const MAX_TRAILER_SECTION = 64 * 1024;
/**
 * Past 12 hex digits (leading zeros not counted) a size is beyond any body the
 * gateway would carry, and beyond 2^53.
 */
const MAX_SIZE_DIGITS = 12;
/** What `advance` returns when it stops in front of data bytes. */
const DATA_NEXT = new Uint8Array(0);

/** Decodes `Transfer-Encoding: chunked` (RFC 9112 §7.1); trailers are read and dropped. */
export class ChunkedDecoder {
  private state = Chunked.Size;
  private remaining = 0;
  private trailerBytes = 0;
  /**
   * Bytes from `start` already searched for the end of the size or trailer
   * line there. Searched again from the line's start after every read, a line
   * trickled a byte per read cost n^2/2: 0.8 s for a 64 KiB trailer field.
   */
  private lineSearched = 0;
  constructor(private readonly conn: ReadBuffer) {}

  get done(): boolean {
    return this.state === Chunked.Done;
  }

  /**
   * Reads the next data bytes into `into`, reading the connection as needed;
   * returns how many, 0 at the end of the body, null when the connection
   * ended first. The data of every chunk already buffered is taken at once:
   * one chunk per call made a body of 1-byte chunks cost a stream pull and an
   * upstream write per byte (about 30 us a byte, 3,000 times a plain body's).
   */
  async readInto(into: Uint8Array): Promise<number | null> {
    while (true) {
      const next = this.framing();
      if (next === false) return 0;
      if (next === true) {
        const n = await this.conn.readInto(into.subarray(0, Math.min(into.length, this.remaining)));
        if (!n) return null;
        this.remaining -= n;
        if (this.remaining === 0) this.state = Chunked.DataEnd;
        return n < into.length ? n + this.takeBuffered(into.subarray(n)) : n;
      }
      if (await this.conn.fill() === 0) return null;
    }
  }

  /**
   * Moves the data of the chunks already buffered into `into`, without
   * waiting for more; returns how many bytes. Malformed framing ends it
   * quietly: the bytes before it are delivered, and the next read throws.
   */
  private takeBuffered(into: Uint8Array): number {
    const c = this.conn;
    let n = 0;
    while (n < into.length) {
      try {
        if (this.framing() !== true) break;
      } catch {
        // What framing() moved over before it threw was well formed: the next call throws again.
        break;
      }
      const take = Math.min(into.length - n, this.remaining, c.end - c.start);
      if (take === 0) break;
      into.set(c.buf.subarray(c.start, c.start + take), n);
      c.start += take;
      n += take;
      this.remaining -= take;
      if (this.remaining === 0) this.state = Chunked.DataEnd;
    }
    return n;
  }

  /**
   * Moves over framing (size lines, CRLFs, trailers) in the buffer: true when
   * data bytes come next, false at the end of the body, null when more input
   * is needed.
   */
  framing(): boolean | null {
    const r = this.advance(true);
    if (r === null) return null;
    return r === DATA_NEXT;
  }

  /**
   * Advances over buffered bytes; returns a data slice when one is available,
   * null when more input is needed, or an empty array at the end of the body.
   */
  step(): Bytes | null {
    return this.advance(false);
  }

  private advance(stopAtData: boolean): Bytes | null {
    const c = this.conn;
    while (true) {
      switch (this.state) {
        case Chunked.Size: {
          const eol = this.lineEnd();
          if (eol < 0) {
            if (c.end - c.start > MAX_CHUNK_LINE) {
              throw new ProtocolError("Chunk size line too long");
            }
            return null;
          }
          this.remaining = chunkSize(c.buf, c.start, eol);
          c.start = eol + 2;
          this.state = this.remaining === 0 ? Chunked.Trailer : Chunked.Data;
          break;
        }
        case Chunked.Data: {
          if (stopAtData) return DATA_NEXT;
          const buffered = c.end - c.start;
          if (buffered === 0) return null;
          const take = Math.min(buffered, this.remaining);
          const out = c.buf.slice(c.start, c.start + take);
          c.start += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = Chunked.DataEnd;
          return out;
        }
        case Chunked.DataEnd: {
          if (c.end - c.start < 2) return null;
          if (c.buf[c.start] !== 13 || c.buf[c.start + 1] !== 10) {
            throw new ProtocolError("Missing CRLF after chunk data");
          }
          c.start += 2;
          this.state = Chunked.Size;
          break;
        }
        case Chunked.Trailer: {
          const eol = this.lineEnd();
          const sectionSoFar = this.trailerBytes + (eol < 0 ? c.end : eol + 2) - c.start;
          if (sectionSoFar > MAX_TRAILER_SECTION) {
            throw new ProtocolError("Trailer section too large");
          }
          if (eol < 0) return null;
          const empty = eol === c.start;
          if (!empty && !trailerLineValid(c.buf, c.start, eol)) {
            throw new ProtocolError("Malformed trailer field");
          }
          this.trailerBytes = sectionSoFar;
          c.start = eol + 2;
          if (empty) {
            this.state = Chunked.Done;
            return new Uint8Array(0);
          }
          break;
        }
        case Chunked.Done:
          return new Uint8Array(0);
      }
    }
  }

  /** The CRLF ending the line at `start`, or -1; the search resumes where the last one stopped. */
  private lineEnd(): number {
    const c = this.conn;
    const eol = findLineEnd(c.buf, c.start + this.lineSearched, c.end);
    // A CR last in the buffer may begin the CRLF: searched again with the next bytes.
    this.lineSearched = eol < 0 ? Math.max(0, c.end - c.start - 1) : 0;
    return eol;
  }
}

/**
 * The size of a chunk-size line in buf[from, eol), checked whole (RFC 9112
 * §7.1): hex digits, then extensions `;name` or `;name=value` (a token or a
 * quoted string) with optional spaces and tabs around `;` and `=`. Nothing
 * else: no padding around the size, no bare CR or LF.
 */
function chunkSize(buf: Uint8Array, from: number, eol: number): number {
  let i = from;
  // 1*HEXDIG: leading zeros are part of a valid size, only the digits after them can overflow.
  while (i < eol && buf[i] === ZERO) i++;
  const significant = i;
  let size = 0;
  while (i < eol && i - significant < MAX_SIZE_DIGITS) {
    const d = hexValue(buf[i]!);
    if (d < 0) break;
    size = size * 16 + d;
    i++;
  }
  if (i === from || (i < eol && hexValue(buf[i]!) >= 0)) {
    throw new ProtocolError("Invalid chunk size");
  }
  while (i < eol) {
    i = skipBws(buf, i, eol);
    if (buf[i] !== SEMICOLON) throw new ProtocolError("Invalid chunk extension");
    i = skipToken(buf, skipBws(buf, i + 1, eol), eol, "Invalid chunk extension");
    const afterName = skipBws(buf, i, eol);
    if (buf[afterName] !== EQUALS) continue;
    const value = skipBws(buf, afterName + 1, eol);
    i = buf[value] === QUOTE
      ? skipQuoted(buf, value, eol)
      : skipToken(buf, value, eol, "Invalid chunk extension");
  }
  return size;
}

const ZERO = 48;
const SEMICOLON = 59;
const EQUALS = 61;
const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 32;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

function skipBws(buf: Uint8Array, i: number, end: number): number {
  while (i < end && (buf[i] === 32 || buf[i] === 9)) i++;
  return i;
}

/** The index past a token (at least one tchar) starting at `i`; throws `reason` if none. */
function skipToken(buf: Uint8Array, i: number, end: number, reason: string): number {
  const from = i;
  while (i < end && TCHAR[buf[i]!] === 1) i++;
  if (i === from) throw new ProtocolError(reason);
  return i;
}

/** The index past a quoted string starting at `i` (its opening quote). */
function skipQuoted(buf: Uint8Array, i: number, end: number): number {
  for (i++; i < end; i++) {
    if (buf[i] === QUOTE) return i + 1;
    if (buf[i] === BACKSLASH) i++; // a quoted pair: the next byte stands for itself
    if (i === end || !isFieldText(buf[i]!)) break;
  }
  throw new ProtocolError("Invalid chunk extension");
}

/** HTAB, SP, visible ASCII and obs-text: what a field value or quoted string may hold. */
function isFieldText(c: number): boolean {
  return c === 9 || (c >= 32 && c !== 127);
}

/** A trailer line is a field line: a token, a colon, and field text (RFC 9112 §7.1.2). */
function trailerLineValid(buf: Uint8Array, from: number, eol: number): boolean {
  let i = from;
  while (i < eol && TCHAR[buf[i]!] === 1) i++;
  if (i === from || buf[i] !== COLON) return false;
  for (i++; i < eol; i++) if (!isFieldText(buf[i]!)) return false;
  return true;
}

/** 1 for the bytes of a token (RFC 9110 §5.6.2). */
const TCHAR = (() => {
  const table = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~") table[c.charCodeAt(0)] = 1;
  for (let c = 48; c <= 57; c++) table[c] = 1;
  for (let c = 65; c <= 90; c++) table[c] = table[c + 32] = 1;
  return table;
})();

/** The whole chunked body if it is already buffered (decoded into one array), else null. */
export function takeBufferedChunked(conn: ReadBuffer): Bytes | null {
  const savedStart = conn.start;
  const decoder = new ChunkedDecoder(conn);
  const parts: Bytes[] = [];
  let total = 0;
  while (true) {
    const part = decoder.step();
    if (part === null) {
      conn.start = savedStart;
      return null;
    }
    if (decoder.done) break;
    parts.push(part);
    total += part.length;
  }
  return concat(parts, total);
}

export function chunkedStream(
  conn: UpstreamConnection,
  done: BodyDone,
  reusable: boolean,
): ReadableStream<Bytes> {
  const decoder = new ChunkedDecoder(conn);
  return stream(
    async (into) => {
      const n = await decoder.readInto(into);
      if (n === null) {
        throw new ProtocolError("Upstream closed the connection inside a chunked body");
      }
      return n;
    },
    conn,
    done,
    () => reusable && decoder.done,
  );
}
