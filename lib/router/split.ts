/**
 * Weighted choice between upstreams for canary releases. With a sticky key the
 * choice is a hash of the key, so one client always lands on the same side.
 */

export interface WeightedChoice<T> {
  pick(stickyKey: string | null): T;
}

/** FNV-1a, 32 bit: fast and well spread for short keys. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * FNV-1a through murmur3's finaliser: FNV alone leaves its top bits, which pick
 * the side, nearly equal for keys that differ in their last characters
 * (`u1`..`u20`, sequential ids), so such keys crowded onto one side.
 */
export function stickyHash(s: string): number {
  let h = fnv1a(s);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function weightedChoice<T>(
  items: { item: T; weight: number }[],
  random: () => number = Math.random,
): WeightedChoice<T> {
  const live = items.filter((i) => i.weight > 0);
  const total = live.reduce((s, i) => s + i.weight, 0);
  const bounds: number[] = [];
  let acc = 0;
  for (const i of live) bounds.push(acc += i.weight);
  const at = (x: number): T => {
    for (let i = 0; i < bounds.length; i++) if (x < bounds[i]!) return live[i]!.item;
    return live[live.length - 1]!.item;
  };
  return {
    pick(stickyKey) {
      if (live.length === 1) return live[0]!.item;
      const x = stickyKey === null
        ? random() * total
        : (stickyHash(stickyKey) / 0x1_0000_0000) * total;
      return at(x);
    },
  };
}
