/**
 * GETs on their way upstream to fill a cache entry, by target URI, in this
 * process. An invalidation of a URI marks its fills outdated: their answer may
 * have been read before the write that invalidated it, and storing it would
 * serve the old resource until its TTL (RFC 9111 §4.4). Bounded by the
 * requests in flight; one registry per gateway, so it survives reloads and
 * covers every route and store. With `--workers N` the other workers'
 * invalidations come from the marks they share (`invalidation_marks.ts`).
 */
import type { InvalidationMarks } from "./invalidation_marks.ts";

export interface Fill {
  /** `targetUri` of the request. */
  readonly uri: string;
  /** Public path of the request, for purges by prefix. */
  readonly path: string;
  /** When the request began (ms, the gateway's clock): what a store compares invalidations to. */
  readonly startedAt: number;
  /** Whether the URI was invalidated in this process since the request began. */
  outdated: boolean;
}

export class PendingFills {
  private readonly byUri = new Map<string, Set<Fill>>();

  /** `marks`: shared with the other workers of a cluster; null in a gateway of one isolate. */
  constructor(private readonly marks: InvalidationMarks | null = null) {}

  begin(uri: string, path: string, startedAt: number): Fill {
    const fill: Fill = { uri, path, startedAt, outdated: false };
    let fills = this.byUri.get(uri);
    if (fills === undefined) this.byUri.set(uri, fills = new Set());
    fills.add(fill);
    return fill;
  }

  end(fill: Fill): void {
    const fills = this.byUri.get(fill.uri);
    if (fills?.delete(fill) && fills.size === 0) this.byUri.delete(fill.uri);
  }

  /** `uri` was invalidated at `now`: fills of it in flight here, or in another worker, are outdated. */
  outdate(uri: string, now: number): void {
    const fills = this.byUri.get(uri);
    if (fills !== undefined) { for (const fill of fills) fill.outdated = true; }
    this.marks?.mark(uri, now);
  }

  /**
   * A purge of `pathPrefix`: fills of it in flight here are outdated, or one that began before
   * the purge would store what it read after it. (A purge reaches every worker itself.)
   */
  outdatePaths(pathPrefix: string): void {
    for (const fills of this.byUri.values()) {
      for (const fill of fills) if (fill.path.startsWith(pathPrefix)) fill.outdated = true;
    }
  }

  /** Whether the fill's URI was invalidated since it began, here or by another worker. */
  isOutdated(fill: Fill): boolean {
    return fill.outdated || (this.marks?.changedSince(fill.uri, fill.startedAt) ?? false);
  }

  /** Fills in flight, for tests. */
  get size(): number {
    let n = 0;
    for (const fills of this.byUri.values()) n += fills.size;
    return n;
  }
}
