/**
 * Sliding window (two counters, weighted): the count of the previous window,
 * weighted by how much of it still overlaps the last `perMs`, plus the count of
 * the current one. Windows are aligned to the Unix epoch. Unlike a fixed window
 * it does not let twice the limit through across a boundary; it assumes the
 * previous window's requests were spread evenly.
 *
 * The test `prev × (perMs − elapsed) / perMs + curr + cost ≤ limit` is done
 * multiplied through by perMs, so it stays in whole numbers.
 */
import type { Algorithm, PackedState, Step } from "./algorithm.ts";

export interface SlidingWindowState {
  /** Start of the current window (ms). */
  readonly start: number;
  readonly prev: number;
  readonly curr: number;
}

export function slidingWindow(limit: number, perMs: number): Algorithm<SlidingWindowState> {
  return {
    spec: { kind: "sliding_window", limit, perMs },
    limit,
    packed: PACKED,
    step(state, now, cost): Step<SlidingWindowState> {
      let start = now - (now % perMs);
      let prev = 0;
      let curr = 0;
      if (state !== undefined) {
        // A window ahead of our clock was opened by a peer whose clock runs ahead: join it.
        if (state.start > start) start = state.start;
        if (state.start === start) {
          prev = state.prev;
          curr = state.curr;
        } else if (state.start === start - perMs) {
          prev = state.curr;
        }
      }
      // Negative in a window joined ahead of our clock: it has not begun for us yet.
      const elapsed = now - start;
      const carried = prev * (perMs - Math.max(0, elapsed));
      const allowed = carried + (curr + cost) * perMs <= limit * perMs;
      let retryAfterMs = 0;
      if (allowed) {
        curr += cost;
      } else if (curr + cost <= limit) {
        // Wait until enough of the previous window has slid out.
        const due = perMs - Math.floor(((limit - curr - cost) * perMs) / prev);
        retryAfterMs = due - elapsed;
      } else {
        // Not in this window: in the next, today's count becomes the weighted one.
        const due = Math.max(0, perMs - Math.floor(((limit - cost) * perMs) / curr));
        retryAfterMs = perMs + due - elapsed;
      }
      const resetMs = curr > 0 ? 2 * perMs - elapsed : prev > 0 ? perMs - elapsed : 0;
      return {
        allowed,
        remaining: Math.max(0, Math.floor((limit * perMs - carried - curr * perMs) / perMs)),
        resetMs,
        retryAfterMs,
        delayMs: 0,
        state: { start, prev, curr },
      };
    },
  };
}

const PACKED: PackedState<SlidingWindowState> = {
  size: 3,
  write(s, into, at) {
    into[at] = s.start;
    into[at + 1] = s.prev;
    into[at + 2] = s.curr;
  },
  read: (from, at) => ({ start: from[at]!, prev: from[at + 1]!, curr: from[at + 2]! }),
};
