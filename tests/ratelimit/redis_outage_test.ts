/**
 * The Redis store through the gateway when Redis fails: no crash, `on_error`
 * decides, the failure is logged once per interval, and limiting resumes by
 * itself within 5 seconds of Redis coming back. Also: NOSCRIPT recovery.
 */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { redisCommand, startRedis, type TestRedis } from "../helpers/redis.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
import { captureLog, limitedConfig, routeR } from "./helpers.ts";

async function withRedisGateway(
  onError: "allow" | "deny",
  fn: (g: TestGateway, redis: TestRedis, log: Record<string, unknown>[]) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const up = startUpstream(() => new Response("ok"));
  const log = captureLog();
  const g = await startGateway(
    baseConfig(limitedConfig(
      up.url,
      routeR("rate_limit: { algorithm: fixed_window, limit: 5, per: 1h }"),
      `store: { kind: redis, redis: { url: "${redis.url}", on_error: ${onError}, timeout_ms: 1000 } }`,
    )),
    // The logger's clock stands still: "once per interval" (10 s) is then once per test,
    // however long a loaded machine makes the outage last.
    { logger: new JsonLogger("warn", log.write, () => 0) },
  );
  try {
    await fn(g, redis, log.lines);
  } finally {
    await g.close();
    await up.close();
    await redis.close();
  }
}

async function hit(g: TestGateway): Promise<Response> {
  const res = await fetch(`${g.url()}/r`);
  await res.body?.cancel();
  return res;
}

async function statuses(g: TestGateway, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await hit(g)).status);
  return out;
}

/** Keeps requests flowing while Redis goes away and comes back; every one must get an answer. */
function load(g: TestGateway) {
  const seen = new Map<number, number>();
  let running = true;
  const done = (async () => {
    while (running) {
      const status = (await hit(g)).status;
      seen.set(status, (seen.get(status) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    seen,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Polls until a request is decided by Redis again (it carries RateLimit headers). */
async function secondsUntilLimited(g: TestGateway): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const res = await hit(g);
    if (res.headers.has("ratelimit-remaining")) return (performance.now() - t0) / 1000;
    assertOk(performance.now() - t0 < 5000, "limiting did not resume within 5 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("redis down with on_error allow: requests pass, logged once, limiting resumes", async () => {
  await withRedisGateway("allow", async (g, redis, log) => {
    assertEquals(await statuses(g, 6), [200, 200, 200, 200, 200, 429]);
    const traffic = load(g);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1000));
    // While Redis is down every request passes, unlimited.
    const during = await hit(g);
    assertEquals(during.status, 200);
    assertEquals(during.headers.get("ratelimit-remaining"), null);
    await redis.start();
    const back = await secondsUntilLimited(g);
    await traffic.stop();
    assertOk(back < 5, `resumed after ${back} s`);
    assertOk((traffic.seen.get(200) ?? 0) > 10, JSON.stringify([...traffic.seen]));
    assertEquals([...traffic.seen.keys()].filter((s) => s !== 200 && s !== 429), []);
    // Redis came back empty: a fresh window, counted again until the limit refuses.
    const after = await statuses(g, 6);
    assertEquals(after.at(-1), 429);
    assertEquals(after, [...after].sort(), "admitted first, then refused");
    const warned = log.filter((l) =>
      l.msg === "rate limits not enforced: the store is unavailable"
    );
    assertEquals(warned.length, 1, JSON.stringify(log));
    assertEquals(log.filter((l) => l.msg === "redis unavailable").length, 1, JSON.stringify(log));
  });
});

Deno.test("redis down with on_error deny: 503 store_unavailable, then limiting resumes", async () => {
  await withRedisGateway("deny", async (g, redis) => {
    assertEquals(await statuses(g, 2), [200, 200]);
    await redis.stop();
    const res = await fetch(`${g.url()}/r`);
    await assertError(res, 503, "store_unavailable");
    assertEquals(res.headers.get("retry-after"), "1");
    await redis.start();
    assertOk(await secondsUntilLimited(g) < 5);
    assertEquals(await statuses(g, 5), [200, 200, 200, 200, 429]);
  });
});

Deno.test("the limiter script is reloaded after SCRIPT FLUSH (NOSCRIPT)", async () => {
  await withRedisGateway("deny", async (g, redis) => {
    assertEquals(await statuses(g, 2), [200, 200]);
    assertEquals((await redisCommand(redis.port, "SCRIPT FLUSH")).trim(), "+OK");
    assertEquals(await statuses(g, 4), [200, 200, 200, 429]);
  });
});
