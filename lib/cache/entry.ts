/**
 * A stored response and how it travels: served as a Response (with `X-Cache`
 * and `Age`), and encoded as bytes for Redis (a length-prefixed JSON head,
 * then the body).
 */
import type { RequestContext } from "../core/context.ts";
import type { HeaderFields } from "../core/header_fields.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";
import { withBodySize } from "../observe/body_size.ts";

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

/** Bytes an entry holds in memory, with its key and the target URI it is indexed under. */
export function entrySize(key: string, uri: string, e: CachedResponse): number {
  let n = OVERHEAD + (key.length + uri.length + e.path.length) * 2 + e.body.length;
  for (const [k, v] of e.headers) n += (k.length + v.length) * 2;
  return n;
}

/**
 * The stored response for one request: HEAD gets the headers alone (with the
 * body's Content-Length), and a request whose validators match
 * (`If-None-Match`, else `If-Modified-Since`) gets 304 with the fields
 * RFC 9110 §15.4.5 keeps. `now`: when it is served, later than the request's arrival for an
 * answer that waited on the upstream.
 */
export function serveEntry(
  ctx: RequestContext,
  e: CachedResponse,
  status: CacheStatus,
  now = ctx.now,
): Response {
  ctx.cacheStatus = status;
  const age = String(Math.max(0, Math.floor((now - e.date) / 1000)));
  const req = ctx.headers;
  if (e.status === 200 && isConditional(req)) {
    if (validatorsMatch(req, field(e, "etag"), field(e, "last-modified"))) {
      const headers = e.headers.filter(([name]) => NOT_MODIFIED_FIELDS.has(name));
      headers.push(["x-cache", status], ["age", age]);
      return new Response(null, { status: 304, headers: headers as [string, string][] });
    }
  }
  // A list, not a Headers object: the runtime builds one from it at half the cost of set().
  const headers = e.headers.slice();
  headers.push(["x-cache", status], ["age", age]);
  const noBody = NO_BODY.has(e.status);
  // HEAD gets the fields a GET would (RFC 9110 §9.3.2), its length among them.
  if (ctx.method === "HEAD" && !noBody) headers.push(["content-length", String(e.body.length)]);
  const empty = ctx.method === "HEAD" || noBody;
  const res = new Response(empty ? null : e.body, {
    status: e.status,
    headers: headers as [string, string][],
  });
  return empty ? res : withBodySize(res, e.body.length);
}

const NOT_MODIFIED_FIELDS = new Set([
  "cache-control",
  "content-location",
  "date",
  "etag",
  "expires",
  "last-modified",
  "vary",
]);

function field(e: CachedResponse, name: string): string | null {
  for (const [k, v] of e.headers) if (k === name) return v;
  return null;
}

function isConditional(req: HeaderFields): boolean {
  return req.has("if-none-match") || req.has("if-modified-since");
}

/**
 * An answer the cache does not store, to a request whose validators it kept from the upstream
 * (to fill an entry with a full answer): 304 when they match, as the upstream would have sent.
 */
export async function answerValidators(ctx: RequestContext, res: Response): Promise<Response> {
  const req = ctx.headers;
  if (res.status !== 200 || ctx.errorCode !== null || !isConditional(req)) return res;
  if (!validatorsMatch(req, res.headers.get("etag"), res.headers.get("last-modified"))) return res;
  await res.body?.cancel().catch(() => {});
  const headers: [string, string][] = [];
  for (const h of res.headers) if (!isContentField(h[0])) headers.push(h);
  return new Response(null, { status: 304, headers });
}

/** Fields that describe the body a 304 does not carry (RFC 9110 §15.4.5). */
function isContentField(name: string): boolean {
  return name.startsWith("content-") && name !== "content-location";
}

/** Conditional GET evaluation (RFC 9110 §13.1.2, §13.1.3), weak comparison for ETags. */
function validatorsMatch(
  req: HeaderFields,
  etag: string | null,
  lastModified: string | null,
): boolean {
  const inm = req.get("if-none-match");
  if (inm !== null) {
    if (etag === null) return false;
    const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
    return inm.trim() === "*" || inm.split(",").some((t) => opaque(t) === opaque(etag));
  }
  const since = Date.parse(req.get("if-modified-since") ?? "");
  const modified = Date.parse(lastModified ?? "");
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since;
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
