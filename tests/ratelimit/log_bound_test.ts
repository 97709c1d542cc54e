/**
 * `store.memory.log_max_bytes`: sliding logs, whose size grows with the
 * traffic, hold at most that many bytes of times over every key; past it the
 * least recently used keys go, as past `max_keys`.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { compileAlgorithm } from "../../lib/ratelimit/algorithms/index.ts";
import { MemoryLimiterStore } from "../../lib/store/memory_limiter.ts";
import type { StoredLimit } from "../../lib/store/limiter_store.ts";
import { limitedConfig, routeR } from "./helpers.ts";
import { seededRandom } from "../helpers/seeded_random.ts";

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);

/** A sliding-log limit of `limit` per hour (nothing expires within a test). */
const logLimit = (id: string, limit: number): StoredLimit => ({
  id,
  algorithm: compileAlgorithm({ kind: "sliding_log", limit, perMs: 3_600_000 }),
  cost: 1,
  shadow: false,
});

Deno.test("memory store: sliding logs over every key stay within maxLogEntries", () => {
  const limit = logLimit("log", 100);
  const store = new MemoryLimiterStore({ maxKeys: 100_000, maxLogEntries: 1_000 });
  const admit = (key: string, n: number) => {
    let admitted = 0;
    for (let i = 0; i < n; i++) {
      if (store.decide([limit], [key], T0 + i)[0]!.allowed) admitted++;
    }
    return admitted;
  };
  assertEquals(admit("a", 150), 100, "a's log holds its limit");
  let most = 0;
  for (let k = 0; k < 50; k++) {
    assertEquals(admit(`client-${k}`, 100), 100);
    most = Math.max(most, store.logEntries);
  }
  assertOk(most <= 1_000, `${most} times held`);
  assertOk(store.evicted > 0, "keys went to stay under the bound");
  // a was used least recently: its log went, and it starts afresh (the price of the bound).
  assertEquals(admit("a", 1), 1);
});

Deno.test("memory store: the bound holds with several limits per request and keys rotating out", () => {
  const rand = seededRandom(5);
  const limits = [logLimit("a", 40), logLimit("b", 30), logLimit("c", 20)];
  const bound = 600;
  const store = new MemoryLimiterStore({ maxKeys: 12, maxLogEntries: bound });
  for (let i = 0; i < 20_000; i++) {
    const keys = limits.map(() => `k${Math.floor(rand() * 15)}`);
    store.decide(limits, keys, T0 + i);
    // Half the bound per map, and a map rotates only once past it: by one log at most.
    assertOk(store.logEntries <= bound + 40, `${store.logEntries} times held after ${i + 1}`);
  }
});

Deno.test("memory store: without maxLogEntries, logs are bounded by max_keys alone", () => {
  const limit = logLimit("log", 100);
  const store = new MemoryLimiterStore({ maxKeys: 100_000 });
  for (let k = 0; k < 50; k++) {
    for (let i = 0; i < 100; i++) store.decide([limit], [`client-${k}`], T0 + i);
  }
  assertEquals(store.logEntries, 5_000);
  assertEquals(store.evicted, 0);
});

Deno.test("log_max_bytes through a listener: a flood of full logs pushes out the least recently used key", async () => {
  const up = startUpstream(() => new Response("ok"));
  // 1 MiB is 131,072 times: a rotation every 65,536, six keys' full logs of 10,000 and some.
  const routes = routeR(
    "rate_limit: { algorithm: sliding_log, limit: 10000, per: 1h, cost: 1000, key: header:X-Client }",
  );
  const store = "store: { memory: { log_max_bytes: 1048576 } }";
  const g = await startGateway(baseConfig(limitedConfig(up.url, routes, store)), {
    clock: new ManualClock(T0),
  });
  const get = async (client: string) => {
    const res = await fetch(`${g.url()}/r`, { headers: { "x-client": client } });
    await res.body?.cancel();
    return res.status;
  };
  try {
    for (let i = 0; i < 10; i++) assertEquals(await get("a"), 200, `a's request ${i + 1}`);
    assertEquals(await get("a"), 429, "a has used its limit");
    // Fourteen other clients fill their logs: 140,000 times, past two rotations.
    for (let k = 0; k < 14; k++) {
      for (let i = 0; i < 10; i++) assertEquals(await get(`c${k}`), 200);
    }
    assertEquals(await get("a"), 200, "a's log went with the oldest keys");
  } finally {
    await g.close();
    await up.close();
  }
});
