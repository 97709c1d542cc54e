/**
 * Fixed window: at most `limit` units per window; the count starts again at each
 * window boundary. Windows are aligned to the Unix epoch (so `1d` is a UTC day),
 * or are calendar days and months in UTC (quotas). Cheap and exact, but a client
 * can pass up to twice the limit across a boundary; `sliding_window` cannot.
 */
import type { Algorithm, PackedState, Step, WindowSpec } from "./algorithm.ts";

export interface FixedWindowState {
  /** Start of the window `count` belongs to (ms). */
  readonly start: number;
  readonly count: number;
}

const DAY_MS = 86_400_000;

/** The window holding `now`: [start, end) in ms. */
export function windowBounds(w: WindowSpec, now: number): [number, number] {
  if ("every" in w) {
    const start = now - mod(now, w.every);
    return [start, start + w.every];
  }
  if (w.calendar === "day") {
    const start = now - mod(now, DAY_MS);
    return [start, start + DAY_MS];
  }
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return [Date.UTC(y, m, 1), Date.UTC(y, m + 1, 1)];
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

export function fixedWindow(limit: number, window: WindowSpec): Algorithm<FixedWindowState> {
  return {
    spec: { kind: "fixed_window", limit, window },
    limit,
    packed: PACKED,
    step(state, now, cost): Step<FixedWindowState> {
      let [start, end] = windowBounds(window, now);
      // A window ahead of our clock was opened by a peer whose clock runs ahead: join it.
      if (state !== undefined && state.start > start) {
        [start, end] = windowBounds(window, state.start);
      }
      let count = state !== undefined && state.start === start ? state.count : 0;
      const allowed = count + cost <= limit;
      if (allowed) count += cost;
      return {
        allowed,
        // A limit lowered by a reload can leave the count above it.
        remaining: Math.max(0, limit - count),
        resetMs: end - now,
        retryAfterMs: allowed ? 0 : end - now,
        delayMs: 0,
        state: { start, count },
      };
    },
  };
}

const PACKED: PackedState<FixedWindowState> = {
  size: 2,
  write(s, into, at) {
    into[at] = s.start;
    into[at + 1] = s.count;
  },
  read: (from, at) => ({ start: from[at]!, count: from[at + 1]! }),
};
