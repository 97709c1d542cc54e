/**
 * The stores: atomic decisions over several limits, the memory store's bounds,
 * and the Redis script giving the same verdicts as the TypeScript algorithms
 * (same vectors against both, on a real redis-server).
 */
import { assertEquals, assertOk, assertRejects } from "../helpers/assert.ts";
import { startRedis } from "../helpers/redis.ts";
import type { AlgorithmSpec } from "../../lib/ratelimit/algorithms/index.ts";
import { StoreUnavailableError } from "../../lib/store/limiter_store.ts";
import { MemoryLimiterStore } from "../../lib/store/memory_limiter.ts";
import { RedisLimiterStore } from "../../lib/store/redis_limiter.ts";
import { whenReady } from "../../lib/store/redis.ts";
import { loadRedisClient, type Redis, RedisConnections } from "../../lib/store/redis.ts";
import { redisSchema } from "../../lib/store/schema.ts";
import { silentLogger } from "../../lib/observe/logger.ts";
import { assertMemoryStoreVerdicts, storedLimit as limit } from "./helpers.ts";

const perSecond = (n: number): AlgorithmSpec => ({
  kind: "fixed_window",
  limit: n,
  window: { every: 1000 },
});

Deno.test("memory store: a request refused by one limit consumes from none", () => {
  const store = new MemoryLimiterStore();
  const wide = limit("wide", perSecond(100));
  const narrow = limit("narrow", perSecond(2));
  const both = [wide, narrow];
  const allowed = [0, 1, 2, 3, 4].map(() =>
    store.decide(both, ["k", "k"], 10).every((v) => v.allowed)
  );
  assertEquals(allowed, [true, true, false, false, false]);
  // Only the two admitted requests were counted by the wide limit.
  assertEquals(store.decide([wide], ["k"], 10)[0]!.remaining, 97);
});

Deno.test("memory store: a shadow limit's refusal neither refuses nor holds back the others", () => {
  const store = new MemoryLimiterStore();
  const enforced = limit("enforced", perSecond(10));
  const shadow = limit("shadow", perSecond(1), 1, true);
  for (let i = 0; i < 3; i++) store.decide([enforced, shadow], ["k", "k"], 0);
  const [e, s] = store.decide([enforced, shadow], ["k", "k"], 0);
  assertEquals([e!.allowed, e!.remaining, s!.allowed], [true, 6, false]);
});

Deno.test("memory store: keys are namespaced by limit id", () => {
  const store = new MemoryLimiterStore();
  const a = limit("a", perSecond(1));
  const b = limit("b", perSecond(1));
  assertOk(store.decide([a], ["same"], 0)[0]!.allowed);
  assertOk(store.decide([b], ["same"], 0)[0]!.allowed);
  assertEquals(store.decide([a], ["same"], 0)[0]!.allowed, false);
});

Deno.test("memory store: a flood of distinct keys stays under the cap and spares active keys", () => {
  const store = new MemoryLimiterStore({ maxKeys: 1000 });
  const l = limit("l", { kind: "token_bucket", rate: 1, perMs: 3_600_000, burst: 5 });
  for (let i = 0; i < 3; i++) store.decide([l], ["regular"], i);
  for (let i = 0; i < 50_000; i++) {
    store.decide([l], [`flood-${i}`], 10);
    if (i % 100 === 0) store.decide([l], ["regular"], 10); // 2 tokens left, then refusals
    assertOk(store.size <= 1000);
  }
  assertOk(store.evicted >= 49_000, `evicted ${store.evicted}`);
  // The regular client kept its (empty) bucket: it was never evicted and reset.
  assertEquals(store.decide([l], ["regular"], 20)[0]!.allowed, false);
});

Deno.test("memory store: expired state counts for nothing and a smaller cap trims at once", () => {
  const store = new MemoryLimiterStore({ maxKeys: 100 });
  const l = limit("l", perSecond(1));
  for (let i = 0; i < 100; i++) store.decide([l], [`k${i}`], 500);
  assertEquals(store.decide([l], ["k1"], 999)[0]!.allowed, false);
  assertEquals(store.decide([l], ["k1"], 1000)[0]!.allowed, true);
  store.configure({ maxKeys: 10 });
  assertOk(store.size <= 10, `size ${store.size}`);
});

async function withRedisStore(
  fn: (store: RedisLimiterStore, ctl: {
    connections: RedisConnections;
    command: (...args: string[]) => Promise<unknown>;
    stop(): Promise<void>;
    start(): Promise<void>;
    pause(): void;
    resume(): void;
  }) => Promise<void>,
  timeoutMs = 5000,
) {
  const redis = await startRedis();
  await loadRedisClient();
  const connections = new RedisConnections(silentLogger);
  try {
    // A generous command timeout: 300 ms failed decisions on a stalled machine. A stopped
    // Redis still fails at once (a closed connection, no offline queue), not after this.
    const config = redisSchema.parse({ url: redis.url, prefix: "t:", timeout_ms: timeoutMs });
    const client = connections.get(config);
    assertOk(await whenReady(client, 2000));
    const store = new RedisLimiterStore(client, config, connections);
    await fn(store, {
      connections,
      command: (name, ...args) => client.call(name, ...args),
      stop: redis.stop,
      start: redis.start,
      pause: redis.pause,
      resume: redis.resume,
    });
  } finally {
    connections.closeAll();
    await redis.close();
  }
}

Deno.test("redis store gives the verdicts of the TypeScript algorithms (same vectors)", async () => {
  await withRedisStore(async (redisStore, { command }) => {
    const { compared, refused } = await assertMemoryStoreVerdicts(redisStore, {
      tight: perSecond(3),
      keys: 2,
      seed: 1,
    });
    assertOk(refused > 100, `only ${refused} refusals in ${compared} decisions`);
    // Keys expire by themselves: no key lacks a TTL (PTTL -1). A short window's key may expire
    // between KEYS and PTTL on a slow run (-2): that one had its TTL.
    const keys = await command("KEYS", "t:rl:*") as string[];
    assertOk(keys.length > 0);
    for (const k of keys) assertOk((await command("PTTL", k) as number) !== -1, k);
  });
});

Deno.test("redis store gives the verdicts of the TypeScript algorithms when the clock steps back", async () => {
  await withRedisStore(async (redisStore) => {
    const { refused } = await assertMemoryStoreVerdicts(redisStore, {
      tight: perSecond(3),
      keys: 2,
      seed: 5,
      stepsBack: true,
    });
    assertOk(refused > 100, `only ${refused} refusals`);
  });
});

/** Each algorithm at 10, then at 5 under the same id (a reload that lowers a limit keeps counts). */
const LOWERED: [AlgorithmSpec, AlgorithmSpec][] = [
  [{ kind: "fixed_window", limit: 10, window: { every: 3_600_000 } }, {
    kind: "fixed_window",
    limit: 5,
    window: { every: 3_600_000 },
  }],
  [{ kind: "sliding_log", limit: 10, perMs: 3_600_000 }, {
    kind: "sliding_log",
    limit: 5,
    perMs: 3_600_000,
  }],
  [{ kind: "leaky_bucket", mode: "police", rate: 10, perMs: 3_600_000, capacity: 10 }, {
    kind: "leaky_bucket",
    mode: "police",
    rate: 5,
    perMs: 3_600_000,
    capacity: 5,
  }],
  [{ kind: "sliding_window", limit: 10, perMs: 3_600_000 }, {
    kind: "sliding_window",
    limit: 5,
    perMs: 3_600_000,
  }],
  [{ kind: "token_bucket", rate: 10, perMs: 3_600_000, burst: 10 }, {
    kind: "token_bucket",
    rate: 5,
    perMs: 3_600_000,
    burst: 5,
  }],
];

/** What each store says of one more request once the limit is lowered below the count. */
async function afterLowering(store: {
  decide: MemoryLimiterStore["decide"] | RedisLimiterStore["decide"];
}): Promise<[boolean, number][]> {
  const out: [boolean, number][] = [];
  for (const [i, [before, after]] of LOWERED.entries()) {
    for (let n = 0; n < 8; n++) await store.decide([limit(`low${i}`, before)], ["k"], 1000 + n);
    const [v] = await store.decide([limit(`low${i}`, after)], ["k"], 2000);
    out.push([v!.allowed, v!.remaining]);
  }
  return out;
}

Deno.test("a limit lowered below its count (a reload) reports 0 remaining, never less, in both stores", async () => {
  // The token bucket had 2 of its tokens left, and still has them (a bucket of 5 holds 2).
  const expected: [boolean, number][] = [[false, 0], [false, 0], [false, 0], [false, 0], [true, 1]];
  assertEquals(await afterLowering(new MemoryLimiterStore()), expected);
  await withRedisStore(async (redisStore) => {
    assertEquals(await afterLowering(redisStore), expected);
  });
});

Deno.test("redis store: decisions made at once share script calls and stay exact", async () => {
  await withRedisStore(async (store, { command }) => {
    const l = limit("burst", { kind: "token_bucket", rate: 1, perMs: 86_400_000, burst: 100 });
    const w = limit("window", perSecond(1_000_000));
    const verdicts = await Promise.all(
      Array.from({ length: 1000 }, () => store.decide([l, w], ["k", "k"], 5)),
    );
    assertEquals(verdicts.filter(([v]) => v!.allowed).length, 100);
    // The wide limit counted only the 100 admitted requests.
    assertEquals((await store.decide([w], ["k"], 5))[0]!.remaining, 1_000_000 - 101);
    const stats = await command("INFO", "commandstats") as string;
    const calls = [...stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    assertOk(calls > 1 && calls < 500, `${calls} script calls for 1001 decisions`);
  });
});

Deno.test("redis store reloads its script after NOSCRIPT (SCRIPT FLUSH)", async () => {
  await withRedisStore(async (store, { command }) => {
    const l = limit("n", perSecond(2));
    assertOk((await store.decide([l], ["k"], 0))[0]!.allowed);
    await command("SCRIPT", "FLUSH");
    assertOk((await store.decide([l], ["k"], 0))[0]!.allowed);
    assertEquals((await store.decide([l], ["k"], 0))[0]!.allowed, false);
  });
});

Deno.test("redis store fails fast while Redis is down and recovers when it returns", async () => {
  await withRedisStore(async (store, { connections, stop, start }) => {
    const l = limit("d", perSecond(5));
    assertOk((await store.decide([l], ["k"], 0))[0]!.allowed);
    await stop();
    const errors = connections.errors;
    const t0 = performance.now();
    await assertRejects(() => store.decide([l], ["k"], 0), StoreUnavailableError);
    assertOk(performance.now() - t0 < 1000, "a down Redis answers at once, not after retries");
    assertOk(connections.errors > errors);
    await start();
    const back = performance.now();
    for (;;) {
      try {
        await store.decide([l], ["k"], 0);
        break;
      } catch {
        assertOk(performance.now() - back < 5000, "not back within 5 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });
});

Deno.test("redis store: a stalled Redis fails queued decisions within timeout_ms too", async () => {
  const timeoutMs = 300;
  await withRedisStore(async (store, { pause, resume }) => {
    const l = limit("stall", perSecond(5));
    assertOk((await store.decide([l], ["k"], 0))[0]!.allowed);
    pause();
    try {
      // Far more decisions than the calls in flight carry: most of them queue behind those.
      const t0 = performance.now();
      const waits = await Promise.all(
        Array.from({ length: 10_000 }, () =>
          store.decide([l], ["k"], 0).then(
            () => -1,
            (e) => e instanceof StoreUnavailableError ? performance.now() - t0 : -2,
          )),
      );
      assertEquals(waits.filter((w) => w < 0).length, 0, "every decision failed as unavailable");
      const longest = Math.max(...waits);
      // Before: batch after batch went to the stalled Redis, each waiting its own timeout (3 s).
      assertOk(longest < 2.5 * timeoutMs, `a decision waited ${Math.round(longest)} ms`);
    } finally {
      resume();
    }
    // Redis answers again: so do the decisions.
    const back = performance.now();
    for (;;) {
      try {
        assertEquals((await store.decide([l], ["k"], 0)).length, 1);
        break;
      } catch {
        assertOk(performance.now() - back < 5000, "not back within 5 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }, timeoutMs);
});

Deno.test("redis store: a slow Redis that answers each call in time does not keep queued decisions past timeout_ms", async () => {
  const timeoutMs = 200;
  // A client whose script calls answer when the test says, and a clock the test moves.
  const calls: { keys: number; answer: (reply: number[]) => void }[] = [];
  const client = {
    defineCommand(name: string) {
      (this as unknown as Record<string, unknown>)[name] = (keys: number) =>
        new Promise<number[]>((answer) => calls.push({ keys, answer }));
    },
  };
  let clock = 0;
  const config = redisSchema.parse({ url: "redis://127.0.0.1:1", timeout_ms: timeoutMs });
  const connections = new RedisConnections(silentLogger);
  const store = new RedisLimiterStore(
    client as unknown as Redis,
    config,
    connections,
    () => clock,
  );
  const l = limit("slow", perSecond(1_000_000));
  const settledAt: number[] = [];
  const decisions = Array.from({ length: 3000 }, () =>
    store.decide([l], ["k"], 0).then(
      () => settledAt.push(clock),
      (e) => {
        assertOk(e instanceof StoreUnavailableError);
        settledAt.push(clock);
      },
    ));
  // Each round of calls answers just before its timeout: no call ever fails.
  while (calls.length > 0) {
    clock += timeoutMs * 0.9;
    for (const c of calls.splice(0)) c.answer(new Array(c.keys * 5).fill(1));
    await new Promise((r) => setTimeout(r, 0));
  }
  await Promise.all(decisions);
  assertEquals(settledAt.length, 3000);
  // Queued behind one call, then sent: at most twice timeout_ms (before: 720 ms, four rounds).
  const longest = Math.max(...settledAt);
  assertOk(longest <= 2 * timeoutMs, `a decision waited ${longest} ms`);
});
