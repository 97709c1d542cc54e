/**
 * Cache keys, compiled per route: public path first (so purges by prefix can
 * scan for it), then the route's namespace, the origin as the upstream is told
 * it (an answer over TLS may carry HSTS), query as forwarded (optionally sorted),
 * the configured Vary headers, and on authenticated routes the caller, last,
 * so that no caller's id can be mistaken for another part of the key.
 */
import type { RequestContext } from "../core/context.ts";

export interface CacheKeyOptions {
  /** Route name and a fingerprint of what shapes its responses. */
  namespace: string;
  normalizeQuery: boolean;
  /** Lower-case request header names. */
  vary: readonly string[];
  /** Whether the caller is part of the key (the route authenticates). */
  perCaller: boolean;
}

export type CacheKey = (ctx: RequestContext) => string;

export function compileCacheKey(o: CacheKeyOptions): CacheKey {
  const { namespace, normalizeQuery, vary, perCaller } = o;
  return (ctx) => {
    let key = `${ctx.path}\n${namespace}\n${originOf(ctx)}\n`;
    const query = forwardedQuery(ctx);
    key += normalizeQuery && query.length > 1 ? sortedQuery(query) : query;
    for (const name of vary) key += `\n${ctx.headers.get(name) ?? ""}`;
    if (perCaller) key += `\n${callerOf(ctx)}`;
    return key;
  };
}

/**
 * The origin as the upstream is told it (`buildHeaderBlock`): the listener's scheme and the
 * authority the request was routed by, port included (an upstream may build links and redirects
 * from `X-Forwarded-Host`), and whatever a trusted proxy forwarded of its own: behind one that
 * ends TLS, the `X-Forwarded-Proto` of plain-HTTP and HTTPS clients differ on one listener.
 */
function originOf(ctx: RequestContext): string {
  const origin = `${ctx.listener.tls ? "https" : "http"}://${ctx.incoming.authority.toLowerCase()}`;
  if (!ctx.peerTrusted) return origin;
  const h = ctx.headers;
  return JSON.stringify([
    origin,
    h.get("x-forwarded-proto"),
    h.get("x-forwarded-host"),
    h.get("forwarded"),
  ]);
}

/**
 * The target URI of a request as invalidation sees it (RFC 9111 §4.4): host, public path and
 * query with its pairs sorted, whatever the route, scheme or port. Every entry is indexed under
 * it, so a write through any route drops what any route stored for that URI. Sorting always
 * makes ?b=2&a=1 and ?a=1&b=2 one URI here, also for a route that keys them apart: a write to
 * one drops both, which is never wrong, only more trips upstream.
 */
export function targetUri(ctx: RequestContext): string {
  return uriOf(ctx.host, ctx.path, forwardedQuery(ctx));
}

/**
 * The query as it goes upstream, with its "?": without a credential auth took from it
 * (`api_key=...`), which would otherwise stand in keys, in Redis key names too, for every
 * caller's secret. The caller is keyed apart on authenticated routes anyway.
 */
function forwardedQuery(ctx: RequestContext): string {
  const path = ctx.upstreamPath;
  // What auth strips it strips from the first "?", as here; nothing stripped is the common case.
  if (path.endsWith(ctx.query)) return ctx.query;
  const at = path.indexOf("?");
  return at < 0 ? "" : path.slice(at);
}

/** `targetUri` from its parts: a host without port, a normalised path, a query with its "?". */
export function uriOf(host: string, path: string, query: string): string {
  // A host holds no "/", and a path no "?": the three parts cannot run into each other.
  return host + path + (query.length > 1 ? sortedQuery(query) : query);
}

/**
 * The query's pairs sorted by name, as sent: decoding would make distinct
 * queries one (every invalid escape decodes to U+FFFD). The sort is stable,
 * so repeated names keep their order (?a=2&a=1 is not ?a=1&a=2).
 */
function sortedQuery(query: string): string {
  if (pairsExceed(query, MAX_SORTED_PAIRS)) return query;
  return `?${query.slice(1).split("&").sort(byName).join("&")}`;
}

/**
 * Queries of more pairs are keyed as sent: sorting is n log n comparisons on every miss, 17-25 ms
 * for 64 KB of 3-letter names, 2-3 ms at the default 8 KiB `max_uri_bytes`. Such queries come
 * from scripts that send them in one order; another order is only another entry.
 */
const MAX_SORTED_PAIRS = 256;

function pairsExceed(query: string, max: number): boolean {
  let pairs = 1;
  for (let at = query.indexOf("&"); at >= 0; at = query.indexOf("&", at + 1)) {
    if (++pairs > max) return true;
  }
  return false;
}

function byName(a: string, b: string): number {
  const x = nameOf(a);
  const y = nameOf(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function nameOf(pair: string): string {
  const eq = pair.indexOf("=");
  return eq < 0 ? pair : pair.slice(0, eq);
}

/**
 * The caller as the upstream can tell it: consumer, provider and subject, and the identity
 * headers auth sent (scopes, mapped claims). One consumer may stand for many users (a team
 * listing their subjects, a `consumer_claim` naming the client app), each with answers of
 * their own. "-" for a caller nobody identified.
 */
function callerOf(ctx: RequestContext): string {
  const { consumer, identity } = ctx;
  if (consumer === null && identity === null) return "-";
  const headers = ctx.identityHeaders;
  let memo = headers === null ? undefined : callers.get(headers);
  if (memo === undefined) {
    memo = JSON.stringify([consumer?.id, identity?.provider, identity?.subject, headers]);
    if (headers !== null) callers.set(headers, memo);
  }
  return memo;
}

/**
 * Callers by their identity headers, which auth renders once per identity along with its
 * consumer and subject: a request on a cached route then costs a lookup, not a serialisation.
 */
const callers = new WeakMap<object, string>();

/** FNV-1a of a string, base 36: a short stable fingerprint (not a security boundary). */
export function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}
