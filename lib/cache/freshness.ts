/**
 * Whether a response may be stored by a shared cache, and for how long
 * (RFC 9111 §3, §4.2): the route's TTL, shortened by `s-maxage`, `max-age` or
 * `Expires` and by the time the response already spent in caches upstream
 * (`Age`). Nothing is stored for `no-store`, `private`, `no-cache` (this cache
 * does not revalidate), `Set-Cookie`, `Vary: *`, or a `Vary` naming a request
 * header the route does not key on. A response that must be revalidated
 * once stale is not kept past its freshness.
 */

export interface FreshnessRules {
  ttlMs: number;
  statuses: ReadonlySet<number>;
  /** Lower-case request headers the cache key includes. */
  vary: ReadonlySet<string>;
}

export interface Freshness {
  /** How long the response stays fresh from now. */
  lifetimeMs: number;
  /** How old it already is (its `Age`). */
  ageMs: number;
  /**
   * Whether it may be served stale (`stale_if_error_s`): not after
   * `must-revalidate`, `proxy-revalidate` or `s-maxage` (RFC 9111 §4.2.4, §5.2.2).
   */
  staleAllowed: boolean;
}

const REFUSED = new Set(["no-store", "private", "no-cache"]);
/** Directives that forbid a shared cache to serve the response once stale. */
const NO_STALE = new Set(["must-revalidate", "proxy-revalidate", "s-maxage"]);

/** Freshness of a response this cache may store, or null when it must not be stored. */
export function freshness(
  headers: Headers,
  status: number,
  r: FreshnessRules,
  now: number,
): Freshness | null {
  if (!r.statuses.has(status) || headers.has("set-cookie")) return null;
  const vary = headers.get("vary");
  if (vary !== null) {
    for (const v of vary.split(",")) {
      const name = v.trim().toLowerCase();
      if (name !== "" && !r.vary.has(name)) return null; // includes "*"
    }
  }
  let upstreamMs: number | null = null;
  let staleAllowed = true;
  const cc = headers.get("cache-control");
  if (cc !== null) {
    let maxAge: number | null = null;
    let sMaxAge: number | null = null;
    for (const part of cc.split(",")) {
      const eq = part.indexOf("=");
      const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      if (REFUSED.has(name)) return null;
      if (NO_STALE.has(name)) staleAllowed = false;
      // A repeated one counts as first given (RFC 9111 §4.2.1), not as a later line overrides it.
      if (name === "max-age") maxAge ??= deltaSeconds(part.slice(eq + 1));
      else if (name === "s-maxage") sMaxAge ??= deltaSeconds(part.slice(eq + 1));
    }
    const s = sMaxAge ?? maxAge;
    if (s !== null) upstreamMs = s * 1000;
  }
  if (upstreamMs === null) {
    const expires = headers.get("expires");
    if (expires !== null) {
      const at = Date.parse(expires);
      const date = Date.parse(headers.get("date") ?? "");
      // An invalid Expires means "already expired" (RFC 9111 §5.3).
      upstreamMs = Number.isNaN(at) ? 0 : at - (Number.isNaN(date) ? now : date);
    }
  }
  const ageMs = deltaSeconds(headers.get("age") ?? "0") * 1000;
  const lifetimeMs = Math.min(r.ttlMs, upstreamMs ?? Infinity) - ageMs;
  return lifetimeMs > 0 ? { lifetimeMs, ageMs, staleAllowed } : null;
}

/**
 * Whether a request's `Cache-Control` holds `no-store` (RFC 9111 §5.2.1.5): its answer must not
 * be stored, though a stored one may answer it.
 */
export function forbidsStoring(cacheControl: string | null): boolean {
  if (cacheControl === null) return false;
  for (const part of cacheControl.split(",")) {
    const eq = part.indexOf("=");
    if ((eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase() === "no-store") return true;
  }
  return false;
}

/** Delta-seconds (RFC 9111 §1.2.2); an invalid value counts as 0 (an invalid max-age: stale). */
export function deltaSeconds(text: string): number {
  const t = text.trim().replace(/^"(.*)"$/, "$1");
  return /^\d+$/.test(t) ? Number(t) : 0;
}
