/**
 * Load balancing over an upstream's targets. Each balancer only considers
 * targets that are currently available (healthy, not ejected, circuit not open).
 */
import { fnv1a } from "../core/hash.ts";

export interface Balanced {
  readonly weight: number;
  /** Requests in flight to this target. */
  readonly inFlight: number;
  /** `now` is the gateway's clock (ms since the epoch), which circuits and ejections are timed on. */
  available(now: number): boolean;
}

export interface Balancer<T extends Balanced> {
  /** A target, avoiding `exclude` when possible; null if none is available. */
  pick(key: string | null, now: number, exclude?: ReadonlySet<T> | null): T | null;
}

function candidates<T extends Balanced>(
  targets: readonly T[],
  now: number,
  exclude: ReadonlySet<T> | null | undefined,
): T[] {
  const out: T[] = [];
  for (const t of targets) {
    if (t.weight > 0 && t.available(now) && !exclude?.has(t)) out.push(t);
  }
  // With every available target excluded (all tried), allow repeats rather than fail.
  if (out.length === 0 && exclude && exclude.size > 0) {
    for (const t of targets) if (t.weight > 0 && t.available(now)) out.push(t);
  }
  return out;
}

/** Smooth weighted round robin (as in nginx): even spread, weights respected. */
export function roundRobin<T extends Balanced>(targets: readonly T[]): Balancer<T> {
  const current = new Map<T, number>(targets.map((t) => [t, 0]));
  const allEqual = targets.every((t) => t.weight === targets[0]!.weight);
  let cursor = 0;
  return {
    pick(_key, now, exclude) {
      if (allEqual) {
        const n = targets.length;
        for (let i = 0; i < n; i++) {
          const t = targets[(cursor + i) % n]!;
          if (t.weight > 0 && t.available(now) && !exclude?.has(t)) {
            // A retry does not move the rotation, so first attempts stay evenly spread.
            if (!exclude) cursor = (cursor + i + 1) % n;
            return t;
          }
        }
        return candidates(targets, now, exclude)[0] ?? null;
      }
      const live = candidates(targets, now, exclude);
      if (live.length === 0) return null;
      let total = 0;
      let best: T | null = null;
      for (const t of live) {
        const c = current.get(t)! + t.weight;
        current.set(t, c);
        total += t.weight;
        if (best === null || c > current.get(best)!) best = t;
      }
      current.set(best!, current.get(best!)! - total);
      return best;
    },
  };
}

export function random<T extends Balanced>(
  targets: readonly T[],
  rand: () => number = Math.random,
): Balancer<T> {
  return {
    pick(_key, now, exclude) {
      const live = candidates(targets, now, exclude);
      if (live.length === 0) return null;
      let total = 0;
      for (const t of live) total += t.weight;
      let x = rand() * total;
      for (const t of live) {
        if ((x -= t.weight) < 0) return t;
      }
      return live[live.length - 1]!;
    },
  };
}

/** Fewest requests in flight relative to weight; ties go round robin. */
export function leastConn<T extends Balanced>(targets: readonly T[]): Balancer<T> {
  let cursor = 0;
  return {
    pick(_key, now, exclude) {
      const live = candidates(targets, now, exclude);
      if (live.length === 0) return null;
      const start = cursor++ % live.length;
      let best: T | null = null;
      let bestLoad = Infinity;
      for (let i = 0; i < live.length; i++) {
        const t = live[(start + i) % live.length]!;
        const load = t.inFlight / t.weight;
        if (load < bestLoad) [best, bestLoad] = [t, load];
      }
      return best;
    },
  };
}

/**
 * Rendezvous (highest random weight) hashing: a key keeps its target while that
 * target is available, and only the keys of a failed target move.
 */
export function hash<T extends Balanced & { readonly id: string }>(
  targets: readonly T[],
  fallback: Balancer<T>,
): Balancer<T> {
  const seeds = new Map<T, number>(targets.map((t) => [t, fnv1a(t.id)]));
  return {
    pick(key, now, exclude) {
      if (key === null) return fallback.pick(null, now, exclude);
      const live = candidates(targets, now, exclude);
      if (live.length === 0) return null;
      const k = fnv1a(key);
      let best: T | null = null;
      let bestScore = -Infinity;
      for (const t of live) {
        let h = Math.imul(k ^ seeds.get(t)!, 0x9e3779b1);
        h ^= h >>> 15;
        h = Math.imul(h, 0x85ebca77) >>> 0;
        const score = -t.weight / Math.log((h + 1) / 0x1_0000_0001);
        if (score > bestScore) [best, bestScore] = [t, score];
      }
      return best;
    },
  };
}
