/**
 * GETs on their way upstream to fill a cache entry, by target URI, in this
 * process. An invalidation of a URI marks its fills outdated: their answer may
 * have been read before the write that invalidated it, and storing it would
 * serve the old resource until its TTL (RFC 9111 §4.4). Bounded by the
 * requests in flight; one registry per gateway, so it survives reloads and
 * covers every route and store.
 */

export interface Fill {
  /** `targetUri` of the request. */
  readonly uri: string;
  /** When the request began (ms, the gateway's clock): what a store compares invalidations to. */
  readonly startedAt: number;
  /** Whether the URI was invalidated in this process since the request began. */
  outdated: boolean;
}

export class PendingFills {
  private readonly byUri = new Map<string, Set<Fill>>();

  begin(uri: string, startedAt: number): Fill {
    const fill: Fill = { uri, startedAt, outdated: false };
    let fills = this.byUri.get(uri);
    if (fills === undefined) this.byUri.set(uri, fills = new Set());
    fills.add(fill);
    return fill;
  }

  end(fill: Fill): void {
    const fills = this.byUri.get(fill.uri);
    if (fills?.delete(fill) && fills.size === 0) this.byUri.delete(fill.uri);
  }

  outdate(uri: string): void {
    const fills = this.byUri.get(uri);
    if (fills !== undefined) { for (const fill of fills) fill.outdated = true; }
  }

  /** Fills in flight, for tests. */
  get size(): number {
    let n = 0;
    for (const fills of this.byUri.values()) n += fills.size;
    return n;
  }
}
