import { assertEquals, assertOk as assert } from "../helpers/assert.ts";
import { monoNow, systemClock, wallNow } from "../../lib/core/clock.ts";

/** Burns the thread until the real clocks have moved on by `ms`. */
function spin(ms: number): void {
  const wallEnd = Date.now() + ms;
  const monoEnd = performance.now() + ms;
  while (Date.now() < wallEnd || performance.now() < monoEnd) { /* spin */ }
}

Deno.test("clock: every read in one turn of the event loop returns the turn's time", () => {
  const mono = monoNow();
  const wall = wallNow();
  spin(3);
  assertEquals(monoNow(), mono);
  assertEquals(wallNow(), wall);
  assertEquals(systemClock.now(), wall);
  assert(performance.now() >= mono + 3);
  assert(Date.now() >= wall + 3);
});

Deno.test("clock: a read after the turn's microtasks have run is fresh", async () => {
  const mono = monoNow();
  const wall = wallNow();
  spin(3);
  // A continuation queued after the first read runs after the turn has ended.
  await Promise.resolve();
  assert(monoNow() >= mono + 3, "mono read fresh after a microtask checkpoint");
  assert(wallNow() >= wall + 3, "wall read fresh after a microtask checkpoint");

  const again = monoNow();
  await new Promise((r) => setTimeout(r, 5));
  assert(monoNow() >= again + 4, "mono read fresh in a later macrotask");
});

Deno.test("clock: the turn's time is the real clock's", () => {
  const before = Date.now();
  const monoBefore = performance.now();
  // A fresh turn for this test: the last read's microtasks have run between tests.
  const wall = wallNow();
  const mono = monoNow();
  assert(wall >= before && wall <= Date.now());
  assert(mono >= monoBefore && mono <= performance.now());
});
