/** Where cached responses live: the same four operations in memory and in Redis. */
import type { CachedResponse } from "./entry.ts";

export interface CacheStore {
  /** The entry if it is still usable at `now` (fresh, or within its stale window), else null. */
  get(key: string, now: number): Promise<CachedResponse | null>;
  /** Stores an entry until its `staleUntil`; failures are logged, never thrown. */
  set(key: string, entry: CachedResponse, now: number): void;
  /**
   * Drops every entry of one target URI (`uriOf` of their keys), after an unsafe request to it
   * succeeded; failures are logged, never thrown.
   */
  invalidate(uri: string): Promise<void>;
  /** Drops entries whose public path starts with `pathPrefix`; resolves to how many. */
  purge(pathPrefix: string): Promise<number>;
}
