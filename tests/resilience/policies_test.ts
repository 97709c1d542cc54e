/** Retry decisions, backoff, the retry budget, outlier ejection and the bulkhead, in isolation. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { backoffMs, RetryBudget, RetryPolicy } from "../../lib/resilience/retry.ts";
import { OutlierDetector } from "../../lib/resilience/outlier.ts";
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
