/** Shared by the rate-limit tests. */
import {
  type AlgorithmSpec,
  compileAlgorithm,
  type Verdict,
} from "../../lib/ratelimit/algorithms/index.ts";
import type { LimiterStore, StoredLimit } from "../../lib/store/limiter_store.ts";
import { MemoryLimiterStore } from "../../lib/store/memory_limiter.ts";
import { assertEquals } from "../helpers/assert.ts";
import { seededRandom } from "../helpers/seeded_random.ts";

/** Collects log lines (JSON) for assertions on what was logged and how often. */
export function captureLog(): { lines: Record<string, unknown>[]; write: (line: string) => void } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line) => lines.push(JSON.parse(line)) };
}

/** Route `r` on `/r` to upstream `a`, with `lines` (YAML, one level in) added to it. */
export function routeR(lines: string): string {
  const body = lines.trim().split("\n").map((l) => `    ${l}`).join("\n");
  return `  - name: r\n    match: { path: /r }\n    upstream: a\n${body}\n`;
}

/** A config body: an optional store section, upstream `a` at `upstream`, then the routes. */
export function limitedConfig(upstream: string, routes: string, store = ""): string {
  return `${store}\nupstreams:\n  a: { targets: [ { url: "${upstream}" } ] }\nroutes:\n${routes}`;
}

/** Algorithm specs with small numbers, so that sequences hit refusals, boundaries and refills. */
export const SPECS: AlgorithmSpec[] = [
  { kind: "token_bucket", rate: 7, perMs: 1000, burst: 5 },
  { kind: "token_bucket", rate: 0.3, perMs: 1000, burst: 2 },
  { kind: "leaky_bucket", mode: "police", rate: 3, perMs: 1000, capacity: 4 },
  { kind: "leaky_bucket", mode: "shape", rate: 3, perMs: 1000, capacity: 4 },
  { kind: "fixed_window", limit: 5, window: { every: 700 } },
  { kind: "fixed_window", limit: 5, window: { calendar: "day" } },
  { kind: "sliding_window", limit: 5, perMs: 700 },
  { kind: "sliding_log", limit: 5, perMs: 700 },
];

/** Limits of 100 that do not refill or roll over during a test (the exactness tests). */
export const EXACT_LIMITS = [
  "{ algorithm: token_bucket, rate: 1, per: 1d, burst: 100 }",
  "{ algorithm: leaky_bucket, mode: police, rate: 1, per: 1d, burst: 100 }",
  "{ algorithm: sliding_window, limit: 100, per: 1d }",
  "{ algorithm: sliding_log, limit: 100, per: 1h }",
  "{ algorithm: fixed_window, limit: 100, per: 1d }",
];

/** One route per limit of EXACT_LIMITS: `/r0` ... `/r4` to `upstream`. */
export function exactLimitRoutes(upstream: string): string {
  return `upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
${
    EXACT_LIMITS.map((l, i) =>
      `  - { name: r${i}, match: { path: /r${i} }, upstream: a, rate_limit: ${l} }`
    ).join("\n")
  }
`;
}

export function storedLimit(
  id: string,
  spec: AlgorithmSpec,
  cost = 1,
  shadow = false,
): StoredLimit {
  return { id, algorithm: compileAlgorithm(spec), cost, shadow };
}

const verdictFields = (
  v: Verdict,
) => [v.allowed, v.remaining, v.resetMs, v.retryAfterMs, v.delayMs];

/**
 * How much slower than their specs' own units the vectors below run: every period and
 * every step between decisions times this. A Redis store gives each key the TTL after
 * which its state is empty, and Redis counts it in real time; the vectors' clock moves
 * about 75 ms a decision, a decision takes a millisecond, and a key of 7 per second with
 * one token spent lives 143 ms. A stall longer than that between two decisions on the
 * key (a loaded machine) expired it in Redis only: 4 remaining where the memory store
 * said 3. Scaled, the shortest TTL is minutes; the arithmetic is the same.
 */
const VECTOR_TIME_SCALE = 1000;

/** `spec` with its periods `VECTOR_TIME_SCALE` times longer (calendar windows as they are). */
function slowed(spec: AlgorithmSpec): AlgorithmSpec {
  if (spec.kind === "fixed_window") {
    return "every" in spec.window
      ? { ...spec, window: { every: spec.window.every * VECTOR_TIME_SCALE } }
      : spec;
  }
  return { ...spec, perMs: spec.perMs * VECTOR_TIME_SCALE };
}

/**
 * Decides seeded vectors (150 per set; `keys` keys, costs 1 and 2) with `store`
 * and with a fresh memory store, and asserts the same verdicts: every spec of
 * SPECS alone, and beside `tight` so that atomic refusals happen. Limit ids get
 * `prefix`, so stores that outlive one call keep their states apart. Time runs
 * `VECTOR_TIME_SCALE` times slower than in the specs. With `stepsBack`, the clock
 * steps back by up to 40 (scaled) ms before a quarter of the decisions.
 */
export async function assertMemoryStoreVerdicts(
  store: LimiterStore,
  o: { tight: AlgorithmSpec; keys: number; seed: number; stepsBack?: boolean },
): Promise<{ compared: number; refused: number }> {
  const memory = new MemoryLimiterStore();
  let compared = 0;
  let refused = 0;
  for (const [n, spec] of SPECS.entries()) {
    const sets = [
      [storedLimit(`s${n}`, slowed(spec))],
      [storedLimit(`p${n}`, slowed(spec)), storedLimit(`q${n}`, slowed(o.tight))],
    ];
    for (const set of sets) {
      const rnd = seededRandom(n + o.seed);
      // Starts before a UTC midnight and crosses it (the calendar-day window's boundary).
      let t = Date.UTC(2026, 5, 1) - 3000 * VECTOR_TIME_SCALE;
      for (let i = 0; i < 150; i++) {
        const back = o.stepsBack === true && rnd() < 0.25;
        t += (back ? -Math.floor(rnd() * 40) : Math.floor(rnd() * 150)) * VECTOR_TIME_SCALE;
        const key = `c${Math.floor(rnd() * o.keys)}`;
        const cost = rnd() < 0.2 ? 2 : 1;
        const costed = set.map((l) => ({ ...l, cost }));
        const keys = set.map(() => key);
        const expected = memory.decide(costed, keys, t).map(verdictFields);
        const actual = (await store.decide(costed, keys, t)).map(verdictFields);
        assertEquals(actual, expected, `${set.map((l) => l.id)} at ${t}, ${key}, cost ${cost}`);
        compared++;
        if (!expected[0]![0]) refused++;
      }
    }
  }
  return { compared, refused };
}
