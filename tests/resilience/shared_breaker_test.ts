/** Circuit state shared through a real redis-server: instances open together. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";
import { startFlaky } from "./flaky.ts";
import { statuses, until, upstreamView } from "./support.ts";

const config = (redisUrl: string, upstreamUrl: string) =>
  baseConfig(`
store: { kind: redis, redis: { url: "${redisUrl}", prefix: "t:", timeout_ms: 200 } }
upstreams:
  api:
    targets: [ { url: "${upstreamUrl}" } ]
    circuit_breaker: { consecutive_failures: 3, open_s: 60, shared: true }
routes:
  - { name: api, match: { path: / }, upstream: api }
`);

Deno.test("shared breaker: when one instance opens a circuit the other opens it too", async () => {
  const redis = await startRedis();
  const up = startFlaky(() => ({ status: 502 }));
  const a = await startGateway(config(redis.url, up.url));
  const b = await startGateway(config(redis.url, up.url));
  try {
    const res0 = await fetch(`${b.url()}/`);
    await res0.body?.cancel();
    assertEquals(res0.status, 502, "instance b has a closed circuit");
    await statuses(`${a.url()}/`, 3);
    await assertError(await fetch(`${a.url()}/`), 503, "circuit_open");
    const hitsAfterA = up.hits();

    // Instances read the shared circuits once a second; 10 s leaves a stalled machine room
    // (3 s was two periods of margin) and still needs the shared state: b never fails itself.
    const t0 = performance.now();
    let status = 0;
    while (performance.now() - t0 < 10_000) {
      if ((await upstreamView(b, "api")).targets[0].circuit === "open") {
        status = 503;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(`instance b opened ${(performance.now() - t0).toFixed(0)} ms after instance a`);
    assertEquals(status, 503, "instance b learned of the open circuit");
    const res = await fetch(`${b.url()}/`);
    await assertError(res, 503, "circuit_open");
    assertOk(Number(res.headers.get("retry-after")) > 45, "the shared end of the open period");
    assertEquals(up.hits(), hitsAfterA, "instance b never paid for the failures itself");
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("shared breaker: with Redis down each instance keeps its own breaker", async () => {
  const redis = await startRedis();
  await redis.stop();
  const up = startFlaky(() => ({ status: 503 }));
  const g = await startGateway(config(redis.url, up.url));
  try {
    await statuses(`${g.url()}/`, 3);
    await assertError(await fetch(`${g.url()}/`), 503, "circuit_open");
    assertEquals(up.hits(), 3);
  } finally {
    await g.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("shared breaker: a reload that changes the breaker keeps following the shared circuit", async () => {
  const redis = await startRedis();
  const up = startFlaky(() => ({ status: 502 }));
  const a = await startGateway(config(redis.url, up.url));
  const b = await startGateway(config(redis.url, up.url));
  try {
    // A new breaker (open_s changed) replaces the old one on b; the old one is then disposed.
    await Deno.writeTextFile(b.file, config(redis.url, up.url).replace("open_s: 60", "open_s: 50"));
    const r = await b.gw.reload("test");
    assertOk(r.ok, r.errors.join("\n"));
    await statuses(`${a.url()}/`, 3);
    await assertError(await fetch(`${a.url()}/`), 503, "circuit_open");
    // Until 2026-12-07 the old breaker's disposal stopped the polling of the new one's key.
    await until(async () => (await upstreamView(b, "api")).targets[0].circuit === "open", 10_000);
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("shared breaker: an opening Redis missed is written once Redis is back", async () => {
  const redis = await startRedis();
  const up = startFlaky(() => ({ status: 502 }));
  const a = await startGateway(config(redis.url, up.url));
  const b = await startGateway(config(redis.url, up.url));
  try {
    await redis.stop();
    await statuses(`${a.url()}/`, 3);
    await assertError(await fetch(`${a.url()}/`), 503, "circuit_open");
    await redis.start();
    // Until 2026-12-07 the failed write was dropped, and b never heard of the opening.
    await until(async () => (await upstreamView(b, "api")).targets[0].circuit === "open", 15_000);
    assertEquals(up.hits(), 3, "instance b never paid for the failures itself");
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});
