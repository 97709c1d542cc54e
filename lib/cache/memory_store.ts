/**
 * The in-process cache: one map for the whole gateway, bounded by bytes and
 * evicting the least recently used entries past its budget. It lives in the
 * runtime dependencies, so entries survive reloads. Each worker of a cluster
 * has its own; an entry another worker's write invalidated is dropped when
 * read, by the marks they share.
 */
import { type CachedResponse, entrySize } from "./entry.ts";
import type { Fill } from "./fills.ts";
import type { InvalidationMarks } from "./invalidation_marks.ts";
import type { CacheStore } from "./store.ts";

interface Slot {
  entry: CachedResponse;
  size: number;
  /** Target URI the entry is indexed under. */
  uri: string;
  /** When the request that filled it began: an invalidation since may postdate its answer. */
  since: number;
}

export class MemoryCache implements CacheStore {
  /** Insertion order is recency order: a hit moves its key to the end. */
  private readonly slots = new Map<string, Slot>();
  /** Keys by target URI, so that invalidate finds what every route stored for it. */
  private readonly byUri = new Map<string, Set<string>>();
  private used = 0;

  constructor(
    private maxBytes: number,
    private readonly marks: InvalidationMarks | null = null,
  ) {}

  get bytes(): number {
    return this.used;
  }
  get entries(): number {
    return this.slots.size;
  }
  get capacity(): number {
    return this.maxBytes;
  }

  /** Changes the budget (a reload may), evicting at once if it shrank. */
  resize(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.evict();
  }

  get(key: string, now: number): Promise<CachedResponse | null> {
    const slot = this.slots.get(key);
    if (slot === undefined) return Promise.resolve(null);
    if (now >= slot.entry.staleUntil || this.marks?.changedSince(slot.uri, slot.since)) {
      this.remove(key);
      return Promise.resolve(null);
    }
    this.slots.delete(key);
    this.slots.set(key, slot);
    return Promise.resolve(slot.entry);
  }

  /** The caller has checked that the fill is not outdated (`PendingFills.isOutdated`). */
  set(key: string, entry: CachedResponse, fill: Fill): void {
    const uri = fill.uri;
    const size = entrySize(key, uri, entry);
    this.remove(key);
    if (size > this.maxBytes) return;
    this.slots.set(key, { entry, size, uri, since: fill.startedAt });
    this.used += size;
    let keys = this.byUri.get(uri);
    if (keys === undefined) this.byUri.set(uri, keys = new Set());
    keys.add(key);
    this.evict();
  }

  invalidate(uri: string): Promise<void> {
    for (const key of this.byUri.get(uri) ?? []) this.remove(key);
    return Promise.resolve();
  }

  purge(pathPrefix: string): Promise<number> {
    let n = 0;
    for (const [key, slot] of this.slots) {
      if (slot.entry.path.startsWith(pathPrefix)) {
        this.remove(key);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  private remove(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.used -= slot.size;
    const keys = this.byUri.get(slot.uri);
    if (keys?.delete(key) && keys.size === 0) this.byUri.delete(slot.uri);
  }

  private evict(): void {
    for (const key of this.slots.keys()) {
      if (this.used <= this.maxBytes) return;
      this.remove(key);
    }
  }
}
