/** The algorithms alone, with exact counts at exact instants (no clock, no store). */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import {
  type Algorithm,
  compileAlgorithm,
  windowBounds,
} from "../../lib/ratelimit/algorithms/index.ts";
import { SPECS } from "./helpers.ts";
import { seededRandom as random } from "../helpers/seeded_random.ts";

/** Feeds requests at the given instants, keeping state as a store would; returns the admitted ones. */
function run(alg: Algorithm, times: number[], cost = 1) {
  let state: unknown;
  const admitted: number[] = [];
  const verdicts = [];
  for (const t of times) {
    const s = alg.step(state, t, cost);
    verdicts.push(s);
    if (s.allowed) {
      state = s.state;
      admitted.push(t);
    }
  }
  return { admitted, verdicts, state };
}

const at = (t: number, n: number) => Array.from({ length: n }, () => t);

Deno.test("token_bucket lets a burst through at once, then the sustained rate", () => {
  const alg = compileAlgorithm({ kind: "token_bucket", rate: 10, perMs: 1000, burst: 20 });
  const burst = run(alg, at(0, 25));
  assertEquals(burst.admitted.length, 20);
  assertEquals(burst.verdicts[19]!.remaining, 0);
  assertEquals(burst.verdicts[20]!.retryAfterMs, 100);
  // Then 10 seconds of a client asking every 10 ms: exactly one every 100 ms.
  const times = [...at(0, 25)];
  for (let t = 10; t <= 10_000; t += 10) times.push(t);
  const { admitted } = run(alg, times);
  assertEquals(admitted.length, 20 + 100);
  assertEquals(admitted.slice(20, 24), [100, 200, 300, 400]);
});

Deno.test("token_bucket reports remaining, reset and retry exactly", () => {
  const alg = compileAlgorithm({ kind: "token_bucket", rate: 100, perMs: 60_000, burst: 100 });
  const { verdicts } = run(alg, at(0, 101));
  assertEquals(verdicts[0], {
    allowed: true,
    remaining: 99,
    resetMs: 600,
    retryAfterMs: 0,
    delayMs: 0,
    state: { units: 99 * 60_000, at: 0 },
  });
  const last = verdicts[100]!;
  assertEquals([last.allowed, last.remaining, last.resetMs, last.retryAfterMs], [
    false,
    0,
    60_000,
    600,
  ]);
});

Deno.test("token_bucket with a cost takes that many tokens", () => {
  const alg = compileAlgorithm({ kind: "token_bucket", rate: 1, perMs: 1000, burst: 10 });
  assertEquals(run(alg, at(0, 5), 3).admitted.length, 3);
});

Deno.test("fixed_window lets twice the limit through across a boundary", () => {
  const alg = compileAlgorithm({ kind: "fixed_window", limit: 10, window: { every: 1000 } });
  const { admitted, verdicts } = run(alg, [...at(999, 15), ...at(1000, 15)]);
  assertEquals(admitted.length, 20);
  assertEquals(verdicts[10]!.retryAfterMs, 1);
  assertEquals(verdicts[15]!.resetMs, 1000);
});

Deno.test("sliding_window does not let twice the limit through across a boundary", () => {
  const alg = compileAlgorithm({ kind: "sliding_window", limit: 10, perMs: 1000 });
  const { admitted, verdicts } = run(alg, [...at(999, 15), ...at(1000, 15)]);
  assertEquals(admitted.length, 10);
  // At 1000 the previous window still weighs 10: the next slot frees when 1/10 of it has slid out.
  assertEquals(verdicts[10]!.retryAfterMs, 101);
  assertEquals(verdicts[15]!.retryAfterMs, 100);
  // Half way through the next window, half of the previous one still counts.
  assertEquals(run(alg, [...at(999, 10), ...at(1500, 10)]).admitted.length, 15);
});

Deno.test("sliding_window retry-after is the first instant that admits", () => {
  for (const [limit, prevCount, wait] of [[10, 10, 0], [7, 7, 250], [3, 2, 10]] as const) {
    const alg = compileAlgorithm({ kind: "sliding_window", limit, perMs: 1000 });
    const { state } = run(alg, at(500, prevCount));
    const t0 = 1000 + wait;
    const refusal = alg.step(state, t0, limit);
    assertEquals(refusal.allowed, false);
    const due = t0 + refusal.retryAfterMs;
    assertEquals(alg.step(state, due - 1, limit).allowed, false, `limit ${limit} at ${due - 1}`);
    assertEquals(alg.step(state, due, limit).allowed, true, `limit ${limit} at ${due}`);
  }
});

Deno.test("sliding_log never admits more than the limit in any window", () => {
  const alg = compileAlgorithm({ kind: "sliding_log", limit: 10, perMs: 1000 });
  const times: number[] = [];
  for (let t = 0; t < 5000; t += 7) times.push(t, t);
  const { admitted } = run(alg, times);
  for (const t of admitted) {
    const inWindow = admitted.filter((u) => u > t - 1000 && u <= t).length;
    assertOk(inWindow <= 10, `${inWindow} in the window ending at ${t}`);
  }
  // Across a boundary it is as strict as any instant.
  assertEquals(run(alg, [...at(999, 15), ...at(1000, 15), ...at(1998, 5)]).admitted.length, 10);
  assertEquals(run(alg, [...at(999, 15), ...at(1999, 15)]).admitted.length, 20);
});

/** The sliding log as its definition reads: every admitted time in one sorted array, copied each step. */
function referenceLog(limit: number, perMs: number, log: number[], now: number, cost: number) {
  const live = log.filter((t) => t > now - perMs);
  if (live.length + cost > limit) {
    return {
      log,
      verdict: {
        allowed: false,
        remaining: Math.max(0, limit - live.length),
        resetMs: live.length === 0 ? 0 : live[live.length - 1]! + perMs - now,
        retryAfterMs: live[live.length + cost - limit - 1]! + perMs - now,
      },
    };
  }
  const split = live.filter((t) => t <= now).length;
  const next = [...live.slice(0, split), ...at(now, cost), ...live.slice(split)];
  return {
    log: next,
    verdict: {
      allowed: true,
      remaining: Math.max(0, limit - next.length),
      resetMs: next[next.length - 1]! + perMs - now,
      retryAfterMs: 0,
    },
  };
}

Deno.test("sliding_log answers as its definition does, with steps not kept and clock steps back", () => {
  const rand = random(11);
  for (let run = 0; run < 200; run++) {
    const limit = 1 + Math.floor(rand() * 60);
    const perMs = 50 + Math.floor(rand() * 500);
    const alg = compileAlgorithm({ kind: "sliding_log", limit, perMs });
    let state: unknown;
    let log: number[] = [];
    let now = 1_000_000;
    for (let i = 0; i < 400; i++) {
      // Mostly forward, bursts at one instant, now and then a step back.
      const r = rand();
      now += r < 0.1 ? -Math.floor(rand() * 30) : r < 0.4 ? 0 : Math.floor(rand() * 20);
      const cost = 1 + Math.floor(rand() * Math.min(3, limit));
      const step = alg.step(state, now, cost);
      const want = referenceLog(limit, perMs, log, now, cost);
      const label = `run ${run} step ${i}: limit ${limit} per ${perMs} at ${now} cost ${cost}`;
      assertEquals(
        [step.allowed, step.remaining, step.resetMs, step.retryAfterMs],
        [
          want.verdict.allowed,
          want.verdict.remaining,
          want.verdict.resetMs,
          want.verdict.retryAfterMs,
        ],
        label,
      );
      // A store keeps an admitting step unless another limit of the request refused (one in five here).
      if (step.allowed && rand() < 0.8) {
        state = step.state;
        log = want.log;
      }
    }
  }
});

Deno.test("sliding_log appends in place: a full log of 10,000 is not copied per request", () => {
  const limit = 10_000;
  const alg = compileAlgorithm({ kind: "sliding_log", limit, perMs: 1000 });
  let state: unknown;
  let copies = 0;
  let longest = 0;
  // Five windows at exactly the limit's rate (ten a millisecond): each admits as many as expire.
  for (let i = 0; i < 50_000; i++) {
    const t = Math.floor(i / 10);
    const step = alg.step(state, t, 1);
    assertOk(step.allowed, `admitted at ${t}`);
    const before = (state as { times?: number[] } | undefined)?.times;
    const after = (step.state as { times: number[] }).times;
    if (before !== undefined && after !== before) copies++;
    longest = Math.max(longest, after.length);
    state = step.state;
  }
  // 50,000 admissions; the live entries move to a new array only when the expired ones pile up.
  assertOk(copies <= 20, `${copies} copies of the log`);
  assertOk(longest <= 1.5 * limit + 1, `an array of ${longest} entries for a log of ${limit}`);
});

Deno.test("leaky_bucket police refuses what overflows the meter and passes the rest at once", () => {
  const alg = compileAlgorithm({
    kind: "leaky_bucket",
    mode: "police",
    rate: 10,
    perMs: 1000,
    capacity: 5,
  });
  const { admitted, verdicts } = run(alg, [...at(0, 8), 50, 100, 150, 200, 300]);
  assertEquals(admitted, [0, 0, 0, 0, 0, 100, 200, 300]);
  assertOk(verdicts.every((v) => v.delayMs === 0));
  assertEquals(verdicts[5]!.retryAfterMs, 100);
});

Deno.test("leaky_bucket shape spaces requests by 1/rate and refuses what overflows the queue", () => {
  const alg = compileAlgorithm({
    kind: "leaky_bucket",
    mode: "shape",
    rate: 10,
    perMs: 1000,
    capacity: 4, // queue 3 + the one being released
  });
  const { admitted, verdicts } = run(alg, at(0, 6));
  assertEquals(admitted.length, 4);
  assertEquals(verdicts.map((v) => v.delayMs), [0, 100, 200, 300, 0, 0]);
  assertEquals(verdicts[4]!.retryAfterMs, 100);
  // The released times are the arrival plus the delay: exactly one per 100 ms.
  const { verdicts: later } = run(alg, [0, 0, 0, 150, 150, 420]);
  const released = [0, 0, 0, 150, 150, 420].map((t, i) => t + later[i]!.delayMs);
  assertEquals(released, [0, 100, 200, 300, 400, 500]);
});

Deno.test("calendar windows are UTC days and months", () => {
  const t = Date.UTC(2028, 1, 29, 23, 59, 59, 999); // a leap day
  assertEquals(windowBounds({ calendar: "day" }, t), [Date.UTC(2028, 1, 29), Date.UTC(2028, 2, 1)]);
  assertEquals(windowBounds({ calendar: "month" }, t), [
    Date.UTC(2028, 1, 1),
    Date.UTC(2028, 2, 1),
  ]);
  const dec = Date.UTC(2027, 11, 31, 12);
  assertEquals(windowBounds({ calendar: "month" }, dec), [
    Date.UTC(2027, 11, 1),
    Date.UTC(2028, 0, 1),
  ]);
  const quota = compileAlgorithm({ kind: "fixed_window", limit: 3, window: { calendar: "month" } });
  const end = Date.UTC(2028, 0, 31, 23, 59, 59);
  const { admitted, verdicts } = run(quota, [...at(end, 4), end + 1000]);
  assertEquals(admitted, [end, end, end, end + 1000]);
  assertEquals(verdicts[3]!.retryAfterMs, 1000);
});

Deno.test("every algorithm: retry-after is exact and state is empty after reset", () => {
  for (const spec of SPECS) {
    const alg = compileAlgorithm(spec);
    const rnd = random(7);
    let state: unknown;
    let t = 1_000_000;
    let refusals = 0;
    for (let i = 0; i < 400; i++) {
      t += Math.floor(rnd() * 120);
      const cost = 1 + Math.floor(rnd() * 2);
      const s = alg.step(state, t, cost);
      const label = `${JSON.stringify(spec)} at ${t} cost ${cost}`;
      if (!s.allowed) {
        refusals++;
        assertOk(s.retryAfterMs > 0, label);
        assertEquals(alg.step(state, t + s.retryAfterMs, cost).allowed, true, label);
        assertEquals(alg.step(state, t + s.retryAfterMs - 1, cost).allowed, false, label);
        continue;
      }
      state = s.state;
      assertOk(s.remaining >= 0 && s.remaining <= alg.limit, label);
      // Once reset has passed, the kept state counts for nothing (so a store may drop it).
      const later = t + s.resetMs;
      const fromState = alg.step(state, later, 1);
      const fromEmpty = alg.step(undefined, later, 1);
      assertEquals(
        [fromState.allowed, fromState.remaining, fromState.delayMs],
        [fromEmpty.allowed, fromEmpty.remaining, fromEmpty.delayMs],
        label,
      );
    }
    assertOk(refusals > 40, `${JSON.stringify(spec)}: only ${refusals} refusals`);
  }
});

Deno.test("every algorithm: a clock that steps back keeps retry-after exact and the state until reset", () => {
  for (const spec of SPECS) {
    const alg = compileAlgorithm(spec);
    const rnd = random(11);
    let state: unknown;
    let t = 1_000_000;
    for (let i = 0; i < 400; i++) {
      // Now and then the clock steps back (an NTP step, a peer behind us), by up to 60 ms.
      t += rnd() < 0.25 ? -Math.floor(rnd() * 60) : Math.floor(rnd() * 120);
      const cost = 1 + Math.floor(rnd() * 2);
      const s = alg.step(state, t, cost);
      const label = `${JSON.stringify(spec)} at ${t} cost ${cost}`;
      if (!s.allowed) {
        assertEquals(alg.step(state, t + s.retryAfterMs, cost).allowed, true, label);
        assertEquals(alg.step(state, t + s.retryAfterMs - 1, cost).allowed, false, label);
        continue;
      }
      state = s.state;
      // A store drops the state at reset: it must count for nothing by then, and not before.
      const later = t + s.resetMs;
      const fromState = alg.step(state, later, 1);
      const fromEmpty = alg.step(undefined, later, 1);
      assertEquals(
        [fromState.allowed, fromState.remaining, fromState.delayMs],
        [fromEmpty.allowed, fromEmpty.remaining, fromEmpty.delayMs],
        label,
      );
    }
  }
});

Deno.test("sliding_log after a clock step back still lets the oldest entries expire first", () => {
  const alg = compileAlgorithm({ kind: "sliding_log", limit: 2, perMs: 1000 });
  // Admitted at 10_000, then at 9_990 once the clock stepped back 10 ms.
  const { state, verdicts } = run(alg, [10_000, 9_990]);
  assertEquals(verdicts[1]!.resetMs, 1010, "the log is empty when the entry at 10 000 expires");
  // At 10 995 the entry of 9 990 has expired, the one of 10 000 has not: one place is free.
  const s = alg.step(state, 10_995, 1);
  assertEquals([s.allowed, s.remaining, s.resetMs], [true, 0, 1000]);
  assertEquals(alg.step(s.state, 10_995, 1).retryAfterMs, 5);
});
