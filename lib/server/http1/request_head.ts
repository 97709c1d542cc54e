/**
 * Parsing of an HTTP/1.1 request head (RFC 9112 §3, §5, §6), strict where a
 * lenient reading would let two parsers disagree on where a request ends:
 * framing that is ambiguous (Content-Length with Transfer-Encoding, differing
 * lengths, a coding other than a lone `chunked`, obs-fold, whitespace before
 * a colon) is refused, never guessed.
 */
import type { ErrorCode } from "../../core/errors.ts";
import { fieldLinesValid, TOKEN, trimEnds } from "../../core/header_fields.ts";
import { connectionOptions } from "../../core/connection_options.ts";

export interface RequestHead {
  method: string;
  /** The request target as sent (origin-form or absolute-form). */
  target: string;
  http10: boolean;
  /** Field lines in order, names lower-cased, values trimmed. */
  headers: [string, string][];
  host: string | null;
  contentLength: number;
  chunked: boolean;
  /** Whether the client allows the connection to serve another request. */
  keepAlive: boolean;
  expectContinue: boolean;
  upgrade: boolean;
}

export interface HeadRefusal {
  code: ErrorCode;
  message: string;
  /** What could be read of the refused head, for the access log. */
  seen?: SeenHead;
}

export interface SeenHead {
  method: string | null;
  target: string | null;
  host: string | null;
}

/** Ceilings below every configurable limit: a head past them is refused before any routing. */
export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_FIELDS = 128;

// Field values: visible ASCII, obs-text, space and tab; no CR, LF, NUL or other controls.
// deno-lint-ignore no-control-regex
const INVALID_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// deno-lint-ignore no-control-regex
const INVALID_TARGET = /[\x00-\x20\x7f]/;
const RAW_BYTE = /[\x80-\xff]/;
const RAW_BYTES = /[\x80-\xff]/g;
const DIGITS = /^\d{1,15}$/;

const COMMON_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];

/**
 * A common method as the program's own string, else null: a parsed one is a
 * fresh string, which every Set or Map lookup on the way would hash again.
 */
function commonMethod(method: string): string | null {
  for (let i = 0; i < COMMON_METHODS.length; i++) {
    if (COMMON_METHODS[i] === method) return COMMON_METHODS[i]!;
  }
  return null;
}

/** Parses a head (the text before the blank line, latin1-decoded); a string answer is a refusal. */
export function parseRequestHead(text: string): RequestHead | HeadRefusal {
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = text.length;
  const requestLine = text.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(" ");
  const sp2 = requestLine.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || requestLine.indexOf(" ", sp2 + 1) >= 0) {
    return refuse("bad_request", "Malformed request line");
  }
  const sent = requestLine.slice(0, sp1);
  const common = commonMethod(sent);
  const method = common ?? sent;
  // Raw bytes past ASCII (the head is latin1-decoded: one char per byte) travel percent-encoded.
  let target = requestLine.slice(sp1 + 1, sp2);
  if (RAW_BYTE.test(target)) target = target.replace(RAW_BYTES, percentEncode);
  const version = requestLine.slice(sp2 + 1);
  if (common === null && !TOKEN.test(method)) {
    return refuse("bad_request", "Malformed method");
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    if (!/^HTTP\/\d\.\d$/.test(version)) return refuse("bad_request", "Malformed HTTP version");
    // A later 1.x is read as 1.1, the highest minor this server conforms to (RFC 9110 §2.5).
    if (version.charCodeAt(5) !== 49 /* 1 */) {
      return refuse("http_version_not_supported", `${version} is not supported on this listener`);
    }
  }
  if (target === "" || INVALID_TARGET.test(target)) {
    return refuse("bad_request", "Malformed request target");
  }
  if (target.charCodeAt(0) !== 47 /* / */ && !/^https?:\/\//i.test(target)) {
    // authority-form (CONNECT) and asterisk-form (OPTIONS *) are not proxied.
    return refuse("bad_request", "Only origin-form and absolute-form request targets are served");
  }
  const http10 = version === "HTTP/1.0";

  const headers: [string, string][] = [];
  let host: string | null = null;
  let hosts = 0;
  let contentLength = -1;
  let transferEncodings = 0;
  let chunked = false;
  // Over every Connection line: a close on one is not undone by a keep-alive on another.
  let closeAsked = false;
  let keepAliveAsked = false;
  let expectContinue = false;
  let upgrade = false;
  // One pass over every field line; only a head that fails it is checked line by line (for the reason).
  const checked = fieldLinesValid(text, lineEnd);
  let pos = lineEnd + 2;
  while (pos < text.length) {
    let next = text.indexOf("\r\n", pos);
    if (next < 0) next = text.length;
    const first = text.charCodeAt(pos);
    if (first === 32 || first === 9) return refuse("bad_request", "Obsolete line folding");
    const colon = text.indexOf(":", pos);
    if (colon <= pos || colon > next) return refuse("bad_request", "Malformed header line");
    const rawName = text.slice(pos, colon);
    if (!checked && !TOKEN.test(rawName)) return refuse("bad_request", "Malformed header name");
    // Optional whitespace is spaces and tabs only (RFC 9110 §5.6.3), not what trim() drops.
    let from = colon + 1;
    let to = next;
    while (from < to && isOws(text.charCodeAt(from))) from++;
    while (to > from && isOws(text.charCodeAt(to - 1))) to--;
    const value = text.slice(from, to);
    pos = next + 2;
    if (!checked && INVALID_VALUE.test(value)) {
      return refuse("bad_request", "Invalid character in header value");
    }
    if (headers.length === MAX_FIELDS) {
      return refuse("headers_too_large", `More than ${MAX_FIELDS} header fields`);
    }
    const name = rawName.toLowerCase();
    headers.push([name, value]);
    switch (name) {
      case "host":
        hosts++;
        host = value;
        break;
      case "content-length": {
        const n = contentLengthOf(value);
        if (n < 0 || (contentLength >= 0 && n !== contentLength)) {
          return refuse("bad_request", "Invalid or conflicting Content-Length");
        }
        contentLength = n;
        break;
      }
      case "transfer-encoding":
        transferEncodings++;
        chunked = value.toLowerCase() === "chunked";
        if (!chunked) return refuse("bad_request", "Only Transfer-Encoding: chunked is accepted");
        break;
      case "connection": {
        const options = connectionOptions(value);
        if (options.includes("close")) closeAsked = true;
        else if (http10 && options.includes("keep-alive")) keepAliveAsked = true;
        if (options.includes("upgrade")) upgrade = true;
        break;
      }
      case "expect":
        if (value.toLowerCase() !== "100-continue") {
          return refuse("expectation_failed", `Expectation not supported: ${value.slice(0, 64)}`);
        }
        expectContinue = !http10;
        break;
    }
  }
  if (transferEncodings > 1) return refuse("bad_request", "Transfer-Encoding sent twice");
  if (chunked && (contentLength >= 0 || http10)) {
    return refuse(
      "bad_request",
      http10 ? "Transfer-Encoding on HTTP/1.0" : "Both Content-Length and Transfer-Encoding",
    );
  }
  if (hosts > 1 || (hosts === 0 && !http10)) {
    return refuse("bad_request", hosts > 1 ? "Host sent twice" : "Missing Host header");
  }
  return {
    method,
    target,
    http10,
    headers,
    host,
    contentLength: contentLength < 0 ? 0 : contentLength,
    chunked,
    keepAlive: !closeAsked && (!http10 || keepAliveAsked),
    expectContinue,
    // A server must ignore Upgrade in an HTTP/1.0 request (RFC 9110 §7.8).
    upgrade: upgrade && !http10 && headers.some(([n]) => n === "upgrade"),
  };
}

/** A Content-Length, or a list repeating one value (RFC 9112 §6.3); -1 when invalid. */
function contentLengthOf(value: string): number {
  if (DIGITS.test(value)) return Number(value);
  // Only spaces and tabs around items: trim() also drops 0xA0 (latin1 NBSP), so `\xa05` was 5.
  const parts = value.split(",").map((p) => trimEnds(p, isOws));
  return parts.every((p) => DIGITS.test(p) && p === parts[0]) ? Number(parts[0]) : -1;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

function percentEncode(c: string): string {
  return `%${c.charCodeAt(0).toString(16).toUpperCase()}`;
}

const SEEN_METHOD = /^[A-Z]{1,20}$/;
const SEEN_HOST = /\r\nhost:[ \t]*([^\r]{0,255})/i;

/**
 * The method, target and host of a refused head, read leniently (they may be
 * what was wrong). The target is whole (the head is bounded): the log drops its
 * userinfo before cutting it, and a cut first could keep part of a password.
 */
export function seenHead(text: string): SeenHead {
  const lineEnd = text.indexOf("\r\n");
  const [method, target] = (lineEnd < 0 ? text : text.slice(0, lineEnd)).split(" ", 2);
  return {
    method: method !== undefined && SEEN_METHOD.test(method) ? method : null,
    target: target || null,
    host: SEEN_HOST.exec(text)?.[1]?.trim() ?? null,
  };
}

function refuse(code: ErrorCode, message: string): HeadRefusal {
  return { code, message };
}

export function isRefusal(h: RequestHead | HeadRefusal): h is HeadRefusal {
  return "code" in h;
}
