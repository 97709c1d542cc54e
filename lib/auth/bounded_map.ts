/**
 * A Map that holds at most `capacity` entries, dropping the oldest insertion
 * first. For caches on the request path, where an LRU's reordering on every
 * hit would cost more than the rare eviction of a still-used entry.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly capacity: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.capacity <= 0) return this;
    if (!this.has(key) && this.size >= this.capacity) {
      this.delete(this.keys().next().value as K);
    }
    return super.set(key, value);
  }
}
