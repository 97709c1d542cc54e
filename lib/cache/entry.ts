/**
 * A stored response and how it travels: served as a Response (with `X-Cache`
 * and `Age`), and encoded as bytes for Redis (a length-prefixed JSON head,
 * then the body).
 */
import type { RequestContext } from "../core/context.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";

export interface CachedResponse {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Bytes;
  /** When the upstream generated it (ms): received minus the upstream's Age. */
  readonly date: number;
  readonly freshUntil: number;
  /** Until when it may stand in for a failing upstream (`stale_if_error_s`). */
  readonly staleUntil: number;
  /** Public path of the request, for purges by prefix. */
  readonly path: string;
}

export type CacheStatus = "HIT" | "MISS" | "STALE" | "BYPASS";

/** Statuses whose responses have no body. */
const NO_BODY = new Set([204, 205, 304]);

/** Bookkeeping per entry beyond its bytes (maps, arrays, the entry object). */
const OVERHEAD = 256;

export function entrySize(key: string, e: CachedResponse): number {
  let n = OVERHEAD + key.length * 2 + e.body.length + e.path.length * 2;
  for (const [k, v] of e.headers) n += (k.length + v.length) * 2;
  return n;
}

/** The stored response for one request; HEAD gets the headers alone. */
export function serveEntry(ctx: RequestContext, e: CachedResponse, status: CacheStatus): Response {
  ctx.cacheStatus = status;
  const headers = new Headers(e.headers as [string, string][]);
  headers.set("x-cache", status);
  headers.set("age", String(Math.max(0, Math.floor((ctx.now - e.date) / 1000))));
  const empty = ctx.method === "HEAD" || NO_BODY.has(e.status);
  return new Response(empty ? null : e.body, { status: e.status, headers });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEntry(e: CachedResponse): Bytes {
  const head = encoder.encode(JSON.stringify({
    s: e.status,
    h: e.headers,
    d: e.date,
    f: e.freshUntil,
    x: e.staleUntil,
    p: e.path,
  }));
  const out = new Uint8Array(4 + head.length + e.body.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(e.body, 4 + head.length);
  return out;
}

/** The entry, or null for bytes that are not one (a foreign or corrupt value). */
export function decodeEntry(bytes: Uint8Array): CachedResponse | null {
  if (bytes.length < 4) return null;
  const headLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(0);
  if (4 + headLength > bytes.length) return null;
  try {
    const h = JSON.parse(decoder.decode(bytes.subarray(4, 4 + headLength)));
    if (typeof h.s !== "number" || !Array.isArray(h.h) || typeof h.p !== "string") return null;
    return {
      status: h.s,
      headers: h.h,
      body: bytes.slice(4 + headLength),
      date: h.d,
      freshUntil: h.f,
      staleUntil: h.x,
      path: h.p,
    };
  } catch {
    return null;
  }
}
