/** Where cached responses live: the same four operations in memory and in Redis. */
import type { CachedResponse } from "./entry.ts";
import type { Fill } from "./fills.ts";

export interface CacheStore {
  /** The entry if it is still usable at `now` (fresh, or within its stale window), else null. */
  get(key: string, now: number): Promise<CachedResponse | null>;
  /**
   * Stores the answer of `fill` until its `staleUntil`, indexed under the fill's target URI. The
   * caller drops fills this process saw invalidated; a shared store also refuses one whose URI
   * another instance invalidated after the fill began (the answer may predate the change).
   * Failures are logged, never thrown.
   */
  set(key: string, entry: CachedResponse, fill: Fill, now: number): void;
  /**
   * Drops every entry stored under one target URI (`targetUri`), by any route, after an unsafe
   * request to it succeeded at `now`; failures are logged, never thrown.
   */
  invalidate(uri: string, now: number): Promise<void>;
  /** Drops entries whose public path starts with `pathPrefix`; resolves to how many. */
  purge(pathPrefix: string): Promise<number>;
}
