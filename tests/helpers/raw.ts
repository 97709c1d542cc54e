/**
 * A raw HTTP/1.1 exchange over TCP, for what fetch will not send: a chosen
 * Host, malformed framing, odd request targets. One request per connection.
 */
import { type Bytes, concat } from "../../lib/proxy/http1/bytes.ts";

export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
  /** The whole response as received. */
  raw: string;
}

/** Sends `head` (lines without the final blank line) and `body` to the base URL's host:port. */
export async function rawRequest(
  baseUrl: string,
  head: string[],
  body = "",
  timeoutMs = 5000,
): Promise<RawResponse> {
  const u = new URL(baseUrl);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  await conn.write(new TextEncoder().encode(head.join("\r\n") + "\r\n\r\n" + body));
  return parseResponse((await readUntilClose(conn, timeoutMs)).text);
}

/**
 * Everything the peer sends on `conn` until it closes (or `limitMs` passes,
 * which closes it), and how long that took. Closes `conn`.
 */
export async function readUntilClose(
  conn: Deno.Conn,
  limitMs: number,
): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  const timer = setTimeout(() => conn.close(), limitMs);
  const chunks: Bytes[] = [];
  const buf = new Uint8Array(65536);
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch {
    // closed by the timer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
  const bytes = concat(chunks, chunks.reduce((n, c) => n + c.length, 0));
  return { text: new TextDecoder().decode(bytes), ms: performance.now() - started };
}

/**
 * Sends `bytes` (a byte string: each char one byte, so 0xA0 is one byte, not
 * its UTF-8 form) and returns every answer's text until the peer closes.
 */
export async function rawExchange(
  baseUrl: string,
  bytes: string,
  timeoutMs = 5000,
): Promise<string> {
  const u = new URL(baseUrl);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes.charCodeAt(i);
  for (let off = 0; off < out.length;) off += await conn.write(out.subarray(off));
  return (await readUntilClose(conn, timeoutMs)).text;
}

/** A GET with `Connection: close` and the given Host and extra header lines. */
export function rawGet(
  baseUrl: string,
  path: string,
  host: string,
  extra: string[] = [],
  timeoutMs?: number,
) {
  return rawRequest(
    baseUrl,
    [
      `GET ${path} HTTP/1.1`,
      `Host: ${host}`,
      "Connection: close",
      ...extra,
    ],
    "",
    timeoutMs,
  );
}

/** A response as received (head and body text). */
export function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf("\r\n\r\n");
  const headText = end < 0 ? raw : raw.slice(0, end);
  const lines = headText.split("\r\n");
  const status = Number(lines[0]?.split(" ")[1] ?? 0);
  const headers = new Headers();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    if (c > 0) headers.append(l.slice(0, c).trim(), l.slice(c + 1).trim());
  }
  let body = end < 0 ? "" : raw.slice(end + 4);
  if (headers.get("transfer-encoding")?.includes("chunked")) body = dechunk(body);
  return { status, headers, body, raw };
}

function dechunk(s: string): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const eol = s.indexOf("\r\n", i);
    if (eol < 0) break;
    const size = parseInt(s.slice(i, eol), 16);
    if (!size) break;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
  return out;
}

/**
 * Reads one whole response (Content-Length framed) from `conn`, leaving it
 * open for the next; "" if it closed (or was reset) first.
 */
export async function readOneResponse(conn: Deno.Conn): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  const buf = new Uint8Array(16384);
  while (true) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const len = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length >= end + 4 + len) return text;
    }
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return text;
    text += dec.decode(buf.subarray(0, n));
  }
}
