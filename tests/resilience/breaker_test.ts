/** The circuit breaker state machine and its rolling window, driven by explicit time. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import {
  type BreakerParams,
  CircuitBreaker,
  type CircuitState,
} from "../../lib/resilience/breaker.ts";
import { RollingCounts } from "../../lib/resilience/window.ts";

const params = (over: Partial<BreakerParams> = {}): BreakerParams => ({
  failureRatio: 0.5,
  minRequests: 4,
  windowMs: 10_000,
  consecutiveFailures: Infinity,
  openMs: 30_000,
  halfOpenRequests: 1,
  ...over,
});

Deno.test("RollingCounts: counts expire bucket by bucket as the window moves", () => {
  const w = new RollingCounts(1000, 10);
  w.add(0, 1, 0);
  w.add(450, 1, 1);
  w.add(990, 1, 1);
  assertEquals([w.totalA(999), w.totalB(999)], [3, 2]);
  assertEquals(w.totalA(1000), 2, "the bucket of t=0 left the window");
  assertEquals(w.totalA(1450), 1);
  assertEquals(w.totalA(1990), 0);
  w.add(5000, 2, 2);
  assertEquals([w.totalA(5000), w.totalB(5000)], [2, 2], "a long gap clears everything");
});

Deno.test("CircuitBreaker: opens on the failure ratio only once min_requests is reached", () => {
  const b = new CircuitBreaker(params());
  b.failure(0, false);
  b.failure(1, false);
  b.success(2, false);
  assertEquals(b.state(3), "closed", "3 requests < min_requests 4");
  b.failure(4, false);
  assertEquals(b.state(5), "open", "3 failures of 4 >= 50%");
  assertEquals(b.openUntil, 4 + 30_000);
  assertEquals(b.allows(5), false);
  assertEquals(b.waitMs(1004), 29_000);
});

Deno.test("CircuitBreaker: a healthy ratio keeps it closed; old failures leave the window", () => {
  const b = new CircuitBreaker(params());
  for (let i = 0; i < 10; i++) b.success(i, false);
  b.failure(10, false);
  b.failure(11, false);
  b.failure(12, false);
  assertEquals(b.state(13), "closed", "3 of 13 failed");
  // Ten seconds on, the successes are gone and two failures of two requests suffice.
  b.failure(20_000, false);
  assertEquals(b.state(20_000), "closed", "1 request in the window");
  b.failure(20_001, false);
  b.failure(20_002, false);
  b.failure(20_003, false);
  assertEquals(b.state(20_004), "open");
});

Deno.test("CircuitBreaker: consecutive failures open it whatever the ratio", () => {
  const b = new CircuitBreaker(params({ consecutiveFailures: 3, minRequests: 1000 }));
  for (let i = 0; i < 100; i++) b.success(i, false);
  b.failure(100, false);
  b.failure(101, false);
  b.success(102, false);
  b.failure(103, false);
  b.failure(104, false);
  assertEquals(b.state(105), "closed", "the success reset the streak");
  b.failure(106, false);
  assertEquals(b.state(107), "open");
});

Deno.test("CircuitBreaker: half-open lets the configured probes through and closes when all pass", () => {
  const seen: CircuitState[] = [];
  const b = new CircuitBreaker(params({ consecutiveFailures: 1, halfOpenRequests: 2 }));
  b.onChange = (s) => seen.push(s);
  b.failure(0, false);
  assertEquals(b.allows(29_999), false);
  assertEquals(b.state(30_000), "half_open");
  assertOk(b.allows(30_000));
  assertEquals(b.admit(30_000), true, "probe 1");
  assertEquals(b.admit(30_000), true, "probe 2");
  assertEquals(b.allows(30_000), false, "no third probe");
  assertEquals(b.admit(30_000), false);
  b.success(30_010, true);
  assertEquals(b.state(30_010), "half_open", "one probe is not enough");
  b.success(30_020, true);
  assertEquals(b.state(30_020), "closed");
  assertEquals(b.admit(30_030), false, "closed: no probes");
  assertEquals(seen, ["open", "half_open", "closed"]);
});

Deno.test("CircuitBreaker: a failed probe reopens for a full period; an abandoned one frees its slot", () => {
  const b = new CircuitBreaker(params({ consecutiveFailures: 1 }));
  b.failure(0, false);
  assertOk(b.admit(30_000));
  b.abandon(true);
  assertOk(b.admit(30_001), "the slot is free again");
  b.failure(30_050, true);
  assertEquals(b.state(30_051), "open");
  assertEquals(b.openUntil, 60_050);
  assertEquals(b.trips, 2);
});

Deno.test("CircuitBreaker: outcomes of requests sent before it opened do not move it", () => {
  const b = new CircuitBreaker(params({ consecutiveFailures: 2 }));
  b.failure(0, false);
  b.failure(1, false);
  assertEquals(b.state(2), "open");
  b.success(3, false);
  b.failure(4, false);
  assertEquals([b.state(5), b.openUntil], ["open", 30_001]);
});

Deno.test("CircuitBreaker: opening remotely never shortens an open period", () => {
  const b = new CircuitBreaker(params());
  const origins: boolean[] = [];
  b.onChange = (_s, _u, local) => origins.push(local);
  b.openRemotely(5_000, 1_000);
  assertEquals([b.state(1_000), b.openUntil], ["open", 5_000]);
  b.openRemotely(4_000, 1_000);
  assertEquals(b.openUntil, 5_000);
  b.openRemotely(500, 1_000);
  assertEquals(b.openUntil, 5_000, "an expired period is ignored");
  assertEquals(origins, [false]);
});
