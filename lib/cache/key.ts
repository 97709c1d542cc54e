/**
 * Cache keys, compiled per route: public path first (so purges by prefix can
 * scan for it), then the route's namespace, scheme and host (as a URL would
 * have them: an answer over TLS may carry HSTS), query (optionally sorted),
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
    const scheme = ctx.listener.tls ? "https" : "http";
    let key = `${ctx.path}\n${namespace}\n${scheme}://${ctx.host}\n`;
    key += normalizeQuery && ctx.query.length > 1 ? sortedQuery(ctx) : ctx.query;
    for (const name of vary) key += `\n${ctx.headers.get(name) ?? ""}`;
    if (perCaller) key += `\n${callerOf(ctx)}`;
    return key;
  };
}

function sortedQuery(ctx: RequestContext): string {
  const params = [...ctx.searchParams];
  // Stable: repeated names keep their order (?a=2&a=1 is not ?a=1&a=2).
  params.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `?${new URLSearchParams(params)}`;
}

/** The consumer, else the provider and subject; "-" for a caller nobody identified. */
function callerOf(ctx: RequestContext): string {
  if (ctx.consumer) return `c:${ctx.consumer.id}`;
  if (ctx.identity) return `s:${ctx.identity.provider}:${ctx.identity.subject}`;
  return "-";
}

/** FNV-1a of a string, base 36: a short stable fingerprint (not a security boundary). */
export function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}
