/** Parsing of an HTTP/1.1 response head (RFC 9112 §4, §5). */
import { type ByteString, HELD_BODY_BYTES, toByteString } from "./bytes.ts";
import type { UpstreamConnection } from "./connection.ts";
import { fieldLinesValid, TOKEN } from "../../core/header_fields.ts";
import { NameSet } from "../../core/name_set.ts";
import { connectionOptions, optionSet } from "../../core/connection_options.ts";

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Fields that belong to one connection and are never forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new NameSet([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export interface ResponseHead {
  status: number;
  statusText: string;
  /** End-to-end fields, lower-cased names, in order. */
  headers: [string, string][];
  contentLength: number | null;
  chunked: boolean;
  /** The upstream asked to close, or spoke HTTP/1.0 without keep-alive. */
  close: boolean;
  upgrade: boolean;
  /**
   * What followed the head in the buffer when it was taken, decoded with it
   * when no more than a held body (one runtime call instead of two), else null.
   */
  after: ByteString | null;
}

const BARE_LF = "Upstream response head with a bare LF line ending";

/** At most 15 digits, as the listener reads a request's: past 2^53 a Number loses the exact length. */
const LENGTH = /^\d{1,15}$/;

/**
 * Reads one response head from the connection, skipping interim 1xx responses
 * (other than 101). Returns null when the connection ended before any byte.
 */
export async function readResponseHead(conn: UpstreamConnection): Promise<ResponseHead | null> {
  let head: ResponseHead | null | undefined = takeResponseHead(conn);
  while (head === undefined) {
    head = conn.filled(await conn.readMore()) === 0
      ? endedBeforeHead(conn)
      : takeResponseHead(conn);
  }
  return head;
}

/**
 * The final response head in the connection's buffer, taken out of it (interim
 * 1xx heads other than 101 are skipped); undefined when one has not all
 * arrived. The exchange's hot path reads with this and awaits the socket
 * itself: one async layer fewer than `readResponseHead`.
 */
export function takeResponseHead(conn: UpstreamConnection): ResponseHead | undefined {
  while (true) {
    const idx = conn.findHeadEnd();
    if (idx < 0) {
      // Such a head never ends by our rules: refused now, not after the first-byte timeout.
      if (conn.headHasBareLf()) throw new ProtocolError(BARE_LF);
      return undefined;
    }
    const start = conn.start;
    // With what follows it no more than a held body, a head is decoded with it.
    const whole = conn.end - idx - 4 <= HELD_BODY_BYTES
      ? toByteString(conn.buf.subarray(start, conn.end))
      : null;
    const text = whole === null
      ? toByteString(conn.buf.subarray(start, idx))
      : whole.slice(0, idx - start);
    conn.consume(idx + 4);
    const head = parseHead(text);
    if (head.status < 100 || head.status >= 200 || head.status === 101) {
      head.after = whole === null ? null : whole.slice(idx + 4 - start);
      return head;
    }
  }
}

/** What a connection that ended while a head was awaited means: null if nothing came, else an error. */
export function endedBeforeHead(conn: UpstreamConnection): null {
  if (conn.end === conn.start) return null;
  throw new ProtocolError("Upstream closed the connection inside a response head");
}

export function parseHead(text: string): ResponseHead {
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = text.length;
  if (!statusLineValid(text, lineEnd)) {
    throw new ProtocolError(`Malformed status line: ${text.slice(0, Math.min(lineEnd, 64))}`);
  }
  const http10 = text.charCodeAt(7) === 48; // "HTTP/1.0"
  const status = statusCode(text);
  const statusText = lineEnd > 13 ? text.slice(13, lineEnd) : "";
  const headers: [string, string][] = [];
  let contentLength: number | null = null;
  let chunked = false;
  let close = http10;
  let upgrade = false;
  let connectionTokens: string[] | null = null;
  if (!fieldLinesValid(text, lineEnd)) throw malformedField(text, lineEnd);
  for (let pos = lineEnd + 2; pos < text.length;) {
    let next = text.indexOf("\r\n", pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(":", pos);
    const name = text.slice(pos, colon).toLowerCase();
    let from = colon + 1;
    let to = next;
    while (from < to && isOws(text.charCodeAt(from))) from++;
    while (to > from && isOws(text.charCodeAt(to - 1))) to--;
    const value = text.slice(from, to);
    pos = next + 2;
    switch (name) {
      case "content-length": {
        const n = LENGTH.test(value) ? Number(value) : repeatedContentLength(value);
        if (contentLength !== null && contentLength !== n) {
          throw new ProtocolError("Conflicting Content-Length values");
        }
        contentLength = n;
        break;
      }
      case "transfer-encoding": {
        // A coding the gateway does not decode would reach the client unlabelled (the field
        // is hop-by-hop), and `chunked` twice would be decoded once: refused, as nginx does.
        if (chunked || !isChunked(value)) {
          throw new ProtocolError(`Unsupported Transfer-Encoding: ${value.slice(0, 64)}`);
        }
        // HTTP/1.0 has no transfer codings: its framing is faulty (RFC 9112 §6.1).
        if (http10) throw new ProtocolError("Transfer-Encoding in an HTTP/1.0 response");
        chunked = true;
        break;
      }
      case "connection": {
        // The two values nearly every upstream sends, which name no field to drop.
        const lower = value.toLowerCase();
        if (lower === "keep-alive") {
          if (http10) close = false;
          break;
        }
        if (lower === "close") {
          close = true;
          break;
        }
        const tokens = connectionOptions(value);
        if (tokens.includes("close")) close = true;
        else if (http10 && tokens.includes("keep-alive")) close = false;
        if (tokens.includes("upgrade")) upgrade = true;
        // Repeated Connection fields add up: each names fields of this hop only.
        // Not push(...tokens): past about 120k options the spread overflows the stack.
        connectionTokens = connectionTokens === null ? tokens : connectionTokens.concat(tokens);
        break;
      }
      default:
        if (!HOP_BY_HOP.has(name)) headers.push([name, value]);
    }
  }
  if (chunked && contentLength !== null) {
    // Transfer-Encoding overrides Content-Length; such a message must not keep the connection.
    contentLength = null;
    close = true;
  }
  const tokens = connectionTokens;
  const named = tokens && tokens.some((t) => t !== "close" && t !== "keep-alive")
    ? optionSet(tokens)
    : null;
  const filtered = named ? headers.filter(([n]) => !named.has(n)) : headers;
  return {
    status,
    statusText,
    headers: filtered,
    contentLength,
    chunked,
    close,
    upgrade,
    after: null,
  };
}

/** Why the field lines failed `fieldLinesValid`, line by line (only on the error path). */
function malformedField(text: string, lineEnd: number): ProtocolError {
  for (const line of text.slice(lineEnd + 2).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) return new ProtocolError("Malformed header line");
    if (!TOKEN.test(line.slice(0, colon))) return new ProtocolError("Malformed header name");
  }
  return new ProtocolError("Invalid character in header value");
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * `HTTP/1.DIGIT SP 3DIGIT [SP reason-phrase]` up to `lineEnd`, the reason
 * phrase without control characters (RFC 9112 §4): the runtime refuses one
 * that has them, and a bare CR or LF in it would split the line.
 */
function statusLineValid(text: string, lineEnd: number): boolean {
  if (lineEnd < 12 || !text.startsWith("HTTP/1.") || !isDigit(text.charCodeAt(7))) return false;
  if (text.charCodeAt(8) !== 32 || statusCode(text) < 100) return false;
  if (lineEnd === 12) return true;
  if (text.charCodeAt(12) !== 32) return false;
  for (let i = 13; i < lineEnd; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return false;
  }
  return true;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** The three digits at 9-11 as a number, or -1. */
function statusCode(text: string): number {
  let n = 0;
  for (let i = 9; i < 12; i++) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) return -1;
    n = n * 10 + c - 48;
  }
  return n;
}

/** Whether a Transfer-Encoding value is `chunked` alone (any case). */
function isChunked(value: string): boolean {
  return value.length === 7 && value.toLowerCase() === "chunked";
}

/** A Content-Length listing one value several times: tolerated (RFC 9112 §6.3) when all agree. */
function repeatedContentLength(value: string): number {
  const parts = value.split(",").map((p) => p.trim());
  if (!parts.every((p) => LENGTH.test(p) && p === parts[0])) {
    throw new ProtocolError("Invalid Content-Length");
  }
  return Number(parts[0]);
}
