/**
 * The one rule every local store applies to a decision, apart from where it
 * keeps states: all limits are stepped from the states as they are; if no
 * enforcing limit refuses, every limit that admits keeps its new state; if one
 * refuses, nothing changes.
 */
import type { Step } from "../ratelimit/algorithms/index.ts";
import type { StoredLimit } from "./limiter_store.ts";

/** Where a store keeps states, by name (`limit id \0 key`). */
export interface StateHome {
  /** The state kept under `name` if it has not expired by `now`. */
  read(name: string, limit: StoredLimit, now: number): unknown;
  /** Keeps an admitting step's state under `name` until it expires. */
  keep(name: string, limit: StoredLimit, step: Step<unknown>, now: number): void;
}

export function stateName(limit: StoredLimit, key: string): string {
  return limit.id + "\u0000" + key;
}

/** Decides `limits` (with `keys[i]` for `limits[i]`) against the states in `home`. */
export function decideAtomically(
  home: StateHome,
  limits: readonly StoredLimit[],
  keys: readonly string[],
  now: number,
): Step<unknown>[] {
  const n = limits.length;
  if (n === 1) {
    const limit = limits[0]!;
    const name = stateName(limit, keys[0]!);
    const step = limit.algorithm.step(home.read(name, limit, now), now, limit.cost);
    if (step.allowed) home.keep(name, limit, step, now);
    return [step];
  }
  const steps = new Array<Step<unknown>>(n);
  const names = new Array<string>(n);
  let admit = true;
  for (let i = 0; i < n; i++) {
    const limit = limits[i]!;
    const name = stateName(limit, keys[i]!);
    const step = limit.algorithm.step(home.read(name, limit, now), now, limit.cost);
    if (!step.allowed && !limit.shadow) admit = false;
    steps[i] = step;
    names[i] = name;
  }
  if (admit) {
    for (let i = 0; i < n; i++) {
      if (steps[i]!.allowed) home.keep(names[i]!, limits[i]!, steps[i]!, now);
    }
  }
  return steps;
}
