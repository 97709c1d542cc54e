/** Retry decisions, backoff, the retry budget, outlier ejection and the bulkhead, in isolation. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { backoffMs, RetryBudget, retryHasTime, RetryPolicy } from "../../lib/resilience/retry.ts";
import { EjectionCap, OutlierDetector } from "../../lib/resilience/outlier.ts";
import { Bulkhead } from "../../lib/resilience/bulkhead.ts";
import { retryPolicySchema } from "../../lib/resilience/schema.ts";

Deno.test("RetryPolicy: idempotent methods by default; connect errors whatever the method", () => {
  const p = new RetryPolicy(retryPolicySchema.parse({ on: ["connect_error", "timeout", 503] }));
  const table: [string, string | number, boolean][] = [
    ["GET", 503, true],
    ["PUT", 503, true],
    ["DELETE", "timeout", true],
    ["POST", 503, false],
    ["PATCH", "timeout", false],
    ["POST", "connect_error", true],
    ["GET", 502, false],
    ["GET", "reset", false],
  ];
  for (const [method, on, expected] of table) {
    const got = typeof on === "number"
      ? p.retriesStatus(on, method)
      : p.retriesError(on as "timeout", method);
    assertEquals(got, expected, `${method} on ${on}`);
  }
  const optIn = new RetryPolicy(retryPolicySchema.parse({ methods: ["post"], on: [503] }));
  assertOk(optIn.retriesStatus(503, "POST"), "a route opts POST in");
  assertEquals(optIn.retriesStatus(503, "GET"), false, "and then lists every retried method");
});

Deno.test("backoffMs: exponential, capped, with half of it jittered", () => {
  assertEquals(backoffMs(1, 100, 1000, () => 0), 50);
  assertEquals(backoffMs(1, 100, 1000, () => 1), 100);
  assertEquals(backoffMs(3, 100, 1000, () => 0.5), 300);
  assertEquals(backoffMs(8, 100, 1000, () => 1), 1000, "capped at max_backoff_ms");
  assertEquals(backoffMs(8, 100, 1000, () => 0), 500);
});

Deno.test("RetryBudget: retries stay within the ratio of requests, with a floor", () => {
  const b = new RetryBudget({ ratio: 0.2, minRetries: 3, windowMs: 10_000 });
  let granted = 0;
  for (let i = 0; i < 100; i++) {
    b.request(i);
    if (b.tryRetry(i)) granted++;
  }
  assertEquals(granted, 20, "20% of 100 requests");
  assertEquals(b.snapshot(100).exhausted, 80);
  const quiet = new RetryBudget({ ratio: 0.2, minRetries: 3, windowMs: 10_000 });
  quiet.request(0);
  assertEquals([quiet.tryRetry(0), quiet.tryRetry(0), quiet.tryRetry(0), quiet.tryRetry(0)], [
    true,
    true,
    true,
    false,
  ]);
  assertOk(quiet.tryRetry(10_000), "the window moved on");
});

Deno.test("RetryBudget: giveBack() returns a retry that was not made, while its bucket is in the window", () => {
  const b = new RetryBudget({ ratio: 0, minRetries: 1, windowMs: 10_000 });
  assertOk(b.tryRetry(500));
  assertEquals(b.tryRetry(600), false, "the one retry is taken");
  b.giveBack(500, 1_500);
  assertEquals(b.snapshot(1_500).retries, 0);
  assertOk(b.tryRetry(1_600), "and may be taken again");
  b.giveBack(1_600, 20_000);
  b.giveBack(1_600, 20_000);
  assertEquals(b.snapshot(20_000).retries, 0, "nothing to give back once the window moved on");
  assertOk(b.tryRetry(20_000));
  assertEquals(b.tryRetry(20_000), false, "a give-back never counts below zero");
});

Deno.test("OutlierDetector: ejects after consecutive failures for a doubling, capped period", () => {
  const o = new OutlierDetector({ consecutiveFailures: 3, baseMs: 1_000, maxMs: 3_000 });
  o.failure(0);
  o.failure(1);
  o.success();
  o.failure(2);
  o.failure(3);
  assertEquals(o.ejected(4), false, "a success broke the streak");
  o.failure(4);
  assertEquals([o.ejected(5), o.ejectedUntil], [true, 1_004]);
  assertEquals(o.ejected(1_004), false, "readmitted when the period ends");
  for (let t = 1_005; t < 1_008; t++) o.failure(t);
  assertEquals(o.ejectedUntil, 1_007 + 2_000, "second ejection: twice as long");
  for (let t = 3_010; t < 3_013; t++) o.failure(t);
  assertEquals(o.ejectedUntil, 3_012 + 3_000, "capped at max");
  for (let t = 20_000; t < 20_003; t++) o.failure(t);
  assertEquals(o.ejectedUntil, 20_002 + 1_000, "calm for max_ejection: back to the base period");
  assertEquals(o.ejections, 4);
});

Deno.test("retryHasTime: a retry needs what the failed attempt took, and a tenth of request_ms", () => {
  // [left after the backoff, what the failed attempt took, request_ms, started]
  const table: [number, number, number, boolean][] = [
    [1, 0, 1000, false], // 1 ms left: the case that turned a 503 into a 504
    [99, 2, 1000, false], // a fast failure, but under a tenth of request_ms left
    [100, 2, 1000, true],
    [300, 600, 1000, false], // the failed attempt took twice what is left
    [600, 600, 1000, true],
    [-5, 0, 1000, false], // the backoff alone outlasts the deadline
  ];
  for (const [left, took, requestMs, expected] of table) {
    assertEquals(retryHasTime(left, took, requestMs), expected, `${left} left, took ${took}`);
  }
  const b = new RetryBudget({ ratio: 0.2, minRetries: 3, windowMs: 10_000 });
  b.late();
  assertEquals(b.snapshot(0), { requests: 0, retries: 0, exhausted: 0, too_late: 1 });
});

Deno.test("EjectionCap: a share of the pool, rounded down, with no ejection always allowed", () => {
  const cap = (percent: number, n: number) => {
    const c = new EjectionCap(percent);
    for (let i = 0; i < n; i++) {
      c.add(new OutlierDetector({ consecutiveFailures: 1, baseMs: 1, maxMs: 1 }), `t${i}`);
    }
    return c.maxEjected;
  };
  const table: [number, number, number][] = [
    [50, 1, 0], // a single target is never ejected under 100%: the circuit breaker probes it
    [100, 1, 1],
    [50, 2, 1],
    [50, 3, 1],
    [50, 4, 2],
    [10, 5, 0],
    [10, 10, 1],
    [0, 10, 0],
    [100, 3, 3],
  ];
  for (const [percent, n, expected] of table) {
    assertEquals(cap(percent, n), expected, `${percent}% of ${n}`);
  }
});

Deno.test("OutlierDetector: an ejection over the cap is refused, and made once an ejection ends", () => {
  const refusals: string[] = [];
  const cap = new EjectionCap(
    50,
    (target, ejected, max) => refusals.push(`${target} ${ejected}/${max}`),
  );
  const params = { consecutiveFailures: 2, baseMs: 1_000, maxMs: 8_000 };
  const [a, b, c, d] = [0, 1, 2, 3].map(() => new OutlierDetector(params)) as [
    OutlierDetector,
    OutlierDetector,
    OutlierDetector,
    OutlierDetector,
  ];
  for (const [o, id] of [[a, "a"], [b, "b"], [c, "c"], [d, "d"]] as const) cap.add(o, id);
  // Every target fails: two of four may be out at once.
  for (let t = 0; t < 2; t++) for (const o of [a, b, c, d]) o.failure(t, cap);
  assertEquals([a.ejected(2), b.ejected(2), c.ejected(2), d.ejected(2)], [
    true,
    true,
    false,
    false,
  ]);
  assertEquals([c.refused, d.refused, cap.refusedTotal], [1, 1, 2]);
  assertEquals(refusals, ["c 2/2", "d 2/2"]);
  c.failure(500, cap);
  assertEquals([c.ejected(500), c.refused, c.consecutive], [false, 2, 2], "still refused");
  // a and b come back at 1001; c kept its streak and goes out at its next failure.
  assertEquals(cap.ejected(1_001), 0);
  c.failure(1_001, cap);
  assertEquals([c.ejected(1_001), c.ejectedUntil, c.consecutive], [true, 2_001, 0]);
  d.failure(1_002, cap);
  assertEquals([d.ejected(1_002), cap.ejected(1_002)], [true, 2], "the second place");
  a.failure(1_003, cap);
  a.failure(1_004, cap);
  assertEquals([a.ejected(1_004), a.refused], [false, 1], "a waits its turn");
  assertEquals([a.ejections, b.ejections, c.ejections, d.ejections], [1, 1, 1, 1]);
});

Deno.test("EjectionCap.enforce: readmits the ejections beyond the cap, soonest to end first", () => {
  const params = { consecutiveFailures: 1, baseMs: 1_000, maxMs: 8_000 };
  const all = [0, 1, 2].map(() => new OutlierDetector(params));
  all.forEach((o, i) => o.failure(i * 100)); // no cap: all three out, until 1000, 1100, 1200
  const cap = new EjectionCap(34); // a plan whose cap allows one of three
  all.forEach((o, i) => cap.add(o, `t${i}`));
  assertEquals(cap.enforce(150).map((o) => cap.id(o)), ["t0", "t1"]);
  assertEquals(all.map((o) => o.ejected(150)), [false, false, true]);
  assertEquals(all[0]!.ejectedUntil, 150);
  assertEquals(cap.enforce(150), [], "within the cap: nothing to do");
});

Deno.test("Bulkhead: slots, a bounded FIFO queue, queue timeout and client abort", async () => {
  const b = new Bulkhead({ maxConcurrent: 2, queue: 2, queueTimeoutMs: 50 });
  assertOk(b.tryAcquire());
  assertOk(b.tryAcquire());
  assertEquals(b.tryAcquire(), false);
  const order: string[] = [];
  const first = b.wait(null).then((ok) => order.push(`first:${ok}`));
  const ac = new AbortController();
  const second = b.wait(ac.signal).then((ok) => order.push(`second:${ok}`));
  assertEquals(await b.wait(null), false, "the queue is full");
  assertEquals(b.queued, 2);
  ac.abort();
  await second;
  b.release();
  await first;
  assertEquals(order, ["second:false", "first:true"]);
  assertEquals(b.active, 2, "the waiter took the freed slot");
  const late = await b.wait(null);
  assertEquals(late, false, "timed out in the queue");
  assertEquals(b.rejected, 2);
  b.release();
  b.release();
  assertEquals(b.active, 0);
});
