/**
 * Watchdog: pings, silence and giving up, with fake workers, a fake timer and
 * a fake clock. The timer fires when the test says and the clock moves with it:
 * nothing sleeps. Then its settings, `server.watchdog`, as the loader reads them.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import type { ArmTimer } from "../../lib/cluster/worker_wait.ts";
import { Watchdog, type WatchedWorker } from "../../lib/cluster/watchdog.ts";
import { loadConfigFile } from "../../lib/config/load.ts";
import { configErrors } from "../config/helpers.ts";

/** Timers armed by the watchdog; `next()` fires the one live timer after moving the clock. */
function fakeTime() {
  let now = 0;
  const timers: { fire: () => void; ms: number; live: boolean }[] = [];
  const arm: ArmTimer = (fire, ms) => {
    const t = { fire, ms, live: true };
    timers.push(t);
    return () => (t.live = false);
  };
  const live = () => timers.filter((t) => t.live);
  return {
    arm,
    now: () => now,
    live,
    /** Fires the one live timer, `ms` after it was armed. */
    next(): void {
      const armed = live();
      assertEquals(armed.length, 1, "live timers");
      const t = armed[0]!;
      t.live = false;
      now += t.ms;
      t.fire();
    },
  };
}

/** A worker that answers each ping at once, or, `stuck`, never (its answers kept in `unanswered`). */
function fakeWorker(index: number, stuck = false) {
  const w = {
    options: { index },
    stuck,
    pings: 0,
    unanswered: [] as (() => void)[],
    ping(answered: () => void) {
      w.pings++;
      if (w.stuck) w.unanswered.push(answered);
      else answered();
    },
  };
  return w;
}

function watch(workers: () => readonly WatchedWorker[], killAfterMs: number, intervalMs = 1_000) {
  const time = fakeTime();
  const givenUp: [number, number][] = [];
  const dog = new Watchdog({
    workers,
    onSilent: (w, silentMs) => givenUp.push([w.options.index, silentMs]),
    timer: time.arm,
    now: time.now,
  });
  dog.configure({ intervalMs, killAfterMs });
  return { dog, time, givenUp };
}

Deno.test("Watchdog pings every worker once an interval; workers that answer are never given up", () => {
  const ws = [fakeWorker(0), fakeWorker(1)];
  const { dog, time, givenUp } = watch(() => ws, 3_000);
  assertEquals(time.live().map((t) => t.ms), [1_000]);
  for (let i = 0; i < 50; i++) time.next();
  assertEquals([ws[0]!.pings, ws[1]!.pings, givenUp], [50, 50, []]);
  assertEquals(dog.silences(), [{ worker: 0, silentMs: 0 }, { worker: 1, silentMs: 0 }]);
});

Deno.test("Watchdog gives up a worker silent for killAfterMs exactly once, sending it no more pings meanwhile", () => {
  const ws = [fakeWorker(0), fakeWorker(1, true)];
  const { dog, time, givenUp } = watch(() => ws, 3_000);
  time.next(); // t=1000: both pinged; worker 1 does not answer
  time.next(); // t=2000
  assertEquals(dog.silences(), [{ worker: 0, silentMs: 0 }, { worker: 1, silentMs: 1_000 }]);
  time.next(); // t=3000: silent 2000 ms
  assertEquals(givenUp, []);
  time.next(); // t=4000: silent 3000 ms
  assertEquals(givenUp, [[1, 3_000]]);
  for (let i = 0; i < 20; i++) time.next();
  assertEquals(givenUp, [[1, 3_000]]);
  // One ping outstanding at most: the stuck worker has one to answer when it runs again.
  assertEquals([ws[1]!.pings, ws[1]!.unanswered.length, ws[0]!.pings], [1, 1, 24]);
  // Given up, it is no longer reported as silent: the cluster is replacing it.
  assertEquals(dog.silences(), [{ worker: 0, silentMs: 0 }]);
});

Deno.test("Watchdog ignores a late answer from a worker it gave up, and watches its replacement afresh", () => {
  const stuck = fakeWorker(1, true);
  const ws: WatchedWorker[] = [fakeWorker(0), stuck];
  const { dog, time, givenUp } = watch(() => ws, 2_000);
  for (let i = 0; i < 3; i++) time.next();
  assertEquals(givenUp, [[1, 2_000]]);
  stuck.unanswered[0]!(); // the pong that comes after terminate
  time.next();
  assertEquals([givenUp.length, stuck.pings], [1, 1]);
  assertEquals(dog.silences().map((s) => s.worker), [0]);

  const replacement = fakeWorker(1);
  ws[1] = replacement;
  for (let i = 0; i < 5; i++) time.next();
  assertEquals([givenUp.length, replacement.pings, stuck.pings], [1, 5, 1]);
  assertEquals(dog.silences(), [{ worker: 0, silentMs: 0 }, { worker: 1, silentMs: 0 }]);
});

Deno.test("Watchdog with killAfterMs 0 never gives up a worker, and its silence keeps growing", () => {
  const ws = [fakeWorker(0, true)];
  const { dog, time, givenUp } = watch(() => ws, 0);
  for (let i = 0; i < 100; i++) time.next();
  assertEquals([givenUp, ws[0]!.pings], [[], 1]);
  assertEquals(dog.silences(), [{ worker: 0, silentMs: 99_000 }]);
  // It runs again: the answer counts, and pings go on.
  ws[0]!.unanswered[0]!();
  ws[0]!.stuck = false;
  assertEquals(dog.silences(), [{ worker: 0, silentMs: 0 }]);
  time.next();
  assertEquals(ws[0]!.pings, 2);
});

Deno.test("Watchdog takes new settings (a reload): a new kill_after applies to the ping outstanding, a new interval re-arms once", () => {
  const ws = [fakeWorker(0, true)];
  const { dog, time, givenUp } = watch(() => ws, 0);
  for (let i = 0; i < 4; i++) time.next(); // silent 3000 ms, kill off
  dog.configure({ intervalMs: 1_000, killAfterMs: 3_000 });
  assertEquals(time.live().length, 1, "the same interval keeps its timer");
  time.next();
  assertEquals(givenUp, [[0, 4_000]]);

  dog.configure({ intervalMs: 250, killAfterMs: 3_000 });
  assertEquals(time.live().map((t) => t.ms), [250]);
});

Deno.test("Watchdog.stop() clears its timer and forgets the workers; a worker given up by then is not given up again", () => {
  const ws = [fakeWorker(0, true), fakeWorker(1)];
  const { dog, time, givenUp } = watch(() => ws, 1_000);
  time.next();
  dog.stop();
  assertEquals([time.live().length, dog.silences()], [0, []]);
  assertEquals(givenUp, []);
  assertOk(ws.every((w) => w.pings === 1));
});

Deno.test("Watchdog stopped from onSilent (the cluster drains) arms no timer again", () => {
  const ws = [fakeWorker(0, true)];
  const time = fakeTime();
  const dog: Watchdog = new Watchdog<WatchedWorker>({
    workers: () => ws,
    onSilent: () => dog.stop(),
    timer: time.arm,
    now: time.now,
  });
  dog.configure({ intervalMs: 100, killAfterMs: 100 });
  time.next();
  time.next();
  assertEquals(time.live().length, 0);
});

Deno.test("server.watchdog: defaults, and errors at the key with what was expected", async () => {
  const { config } = await loadConfig("{}");
  assertEquals(config.server.watchdog, { interval_ms: 1_000, kill_after_s: 10 });
  const off = await loadConfig("server: { watchdog: { kill_after_s: 0 } }");
  assertEquals(off.config.server.watchdog, { interval_ms: 1_000, kill_after_s: 0 });

  const cases: [string, string[]][] = [
    ["server:\n  watchdog: { interval_ms: 0 }\n", [
      "gateway.yaml:2:28: server.watchdog.interval_ms: expected a value > 0, got number 0",
    ]],
    ["server:\n  watchdog: { kill_after_s: -1 }\n", [
      "gateway.yaml:2:29: server.watchdog.kill_after_s: expected a value >= 0, got number -1",
    ]],
    ["server:\n  watchdog: { kill_after_s: 3000000 }\n", [
      "gateway.yaml:2:29: server.watchdog.kill_after_s: expected at most 2073600 s (24 days): a longer timer would fire at once, got number 3000000",
    ]],
    ["server:\n  watchdog: { kill_after: 5 }\n", [
      'gateway.yaml:2:15: server.watchdog.kill_after: unknown key "kill_after" (did you mean "kill_after_s"?)',
    ]],
  ];
  for (const [yaml, errors] of cases) assertEquals(await configErrors(yaml), errors, yaml);
});

async function loadConfig(yaml: string) {
  const dir = await Deno.makeTempDir({ prefix: "gw-watchdog-config-" });
  try {
    await Deno.writeTextFile(`${dir}/gateway.yaml`, yaml);
    return await loadConfigFile(`${dir}/gateway.yaml`, () => undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
