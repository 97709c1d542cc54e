/** Parsing of an HTTP/1.1 response head (RFC 9112 §4, §5). */
import { findHeadEnd, toByteString } from "./bytes.ts";
import type { UpstreamConnection } from "./connection.ts";
import { TOKEN } from "../../core/header_fields.ts";

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Fields that belong to one connection and are never forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set([
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
}

// deno-lint-ignore no-control-regex
const INVALID_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d+$/;

/**
 * Reads one response head from the connection, skipping interim 1xx responses
 * (other than 101). Returns null when the connection ended before any byte.
 */
export async function readResponseHead(conn: UpstreamConnection): Promise<ResponseHead | null> {
  while (true) {
    let scanFrom = conn.start;
    let idx = findHeadEnd(conn.buf, scanFrom, conn.end);
    while (idx < 0) {
      scanFrom = Math.max(conn.start, conn.end - 3);
      const n = await conn.fill();
      if (n === 0) {
        if (conn.end === conn.start) return null;
        throw new ProtocolError("Upstream closed the connection inside a response head");
      }
      idx = findHeadEnd(conn.buf, scanFrom, conn.end);
    }
    const text = toByteString(conn.buf.subarray(conn.start, idx));
    conn.start = idx + 4;
    const head = parseHead(text);
    if (head.status >= 100 && head.status < 200 && head.status !== 101) continue;
    return head;
  }
}

export function parseHead(text: string): ResponseHead {
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = text.length;
  const statusLine = text.slice(0, lineEnd);
  if (!statusLine.startsWith("HTTP/1.")) {
    throw new ProtocolError(`Malformed status line: ${statusLine.slice(0, 64)}`);
  }
  const http10 = statusLine.charCodeAt(7) === 48; // "HTTP/1.0"
  const status = Number(statusLine.slice(9, 12));
  if (!(status >= 100 && status <= 999) || statusLine.charCodeAt(8) !== 32) {
    throw new ProtocolError(`Malformed status line: ${statusLine.slice(0, 64)}`);
  }
  const statusText = statusLine.slice(13);
  const headers: [string, string][] = [];
  let contentLength: number | null = null;
  let chunked = false;
  let close = http10;
  let upgrade = false;
  let connectionTokens: string[] | null = null;
  for (let pos = lineEnd + 2; pos < text.length;) {
    let next = text.indexOf("\r\n", pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(":", pos);
    if (colon <= pos || colon > next) throw new ProtocolError("Malformed header line");
    const name = text.slice(pos, colon).toLowerCase();
    if (!TOKEN.test(name)) throw new ProtocolError("Malformed header name");
    const value = text.slice(colon + 1, next).trim();
    pos = next + 2;
    if (INVALID_VALUE.test(value)) throw new ProtocolError("Invalid character in header value");
    switch (name) {
      case "content-length": {
        const n = DIGITS.test(value) ? Number(value) : repeatedContentLength(value);
        if (contentLength !== null && contentLength !== n) {
          throw new ProtocolError("Conflicting Content-Length values");
        }
        contentLength = n;
        break;
      }
      case "transfer-encoding": {
        const codings = value.toLowerCase().split(",").map((c) => c.trim());
        if (codings[codings.length - 1] === "chunked") chunked = true;
        else close = true; // read until close (RFC 9112 §6.3 rule 4)
        break;
      }
      case "connection": {
        connectionTokens = value.toLowerCase().split(",").map((t) => t.trim());
        if (connectionTokens.includes("close")) close = true;
        else if (http10 && connectionTokens.includes("keep-alive")) close = false;
        if (connectionTokens.includes("upgrade")) upgrade = true;
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
  const named = connectionTokens;
  const filtered = named && named.some((t) => t !== "close" && t !== "keep-alive")
    ? headers.filter(([n]) => !named.includes(n))
    : headers;
  return { status, statusText, headers: filtered, contentLength, chunked, close, upgrade };
}

/** A Content-Length listing one value several times: tolerated (RFC 9112 §6.3) when all agree. */
function repeatedContentLength(value: string): number {
  const parts = value.split(",").map((p) => p.trim());
  if (!parts.every((p) => DIGITS.test(p) && p === parts[0])) {
    throw new ProtocolError("Invalid Content-Length");
  }
  return Number(parts[0]);
}
