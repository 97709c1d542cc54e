/**
 * Weighted choice between upstreams for canary releases. With a sticky key the
 * choice is a hash of the key, so one client always lands on the same side.
 * The hash is mixed: the side is picked by its top bits (see `mixedHash`).
 */
import { mixedHash } from "../core/hash.ts";

export interface WeightedChoice<T> {
  pick(stickyKey: string | null): T;
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
        : (mixedHash(stickyKey) / 0x1_0000_0000) * total;
      return at(x);
    },
  };
}
