/** The Redis cache store against a real redis-server: shared by instances, purged, failing open. */
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";

const config = (upstream: string, redis: string) =>
  baseConfig(`
store: { kind: redis, redis: { url: "${redis}", prefix: "gwtest:", timeout_ms: 200 } }
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: catalog, match: { path: /api }, upstream: a, cache: { ttl_s: 60 } }
`);

async function get(g: TestGateway, path: string) {
  const res = await fetch(`${g.url()}${path}`);
  return [res.status, res.headers.get("x-cache"), await res.text()];
}

/**
 * Repeats a GET until it is a HIT (the store is connected and the write landed), for up to
 * 10 s: connecting, or reconnecting after an outage, can take seconds on a loaded machine.
 */
async function untilCached(g: TestGateway, path: string): Promise<void> {
  for (const end = performance.now() + 10_000; performance.now() < end;) {
    if ((await get(g, path))[1] === "HIT") return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} never became a cache hit`);
}

Deno.test("cache (redis): instances share entries, and a purge on one clears them for all", async () => {
  const redis = await startRedis();
  let n = 0;
  const up = startUpstream(() => Response.json({ n: ++n }));
  const a = await startGateway(config(up.url, redis.url));
  const b = await startGateway(config(up.url, redis.url));
  try {
    await untilCached(a, "/api/warm-a");
    await untilCached(b, "/api/warm-b");
    const [status, cache, stored] = await get(a, "/api/products/1");
    assertEquals([status, cache], [200, "MISS"]);
    await untilCached(b, "/api/products/1");
    assertEquals(await get(b, "/api/products/1"), [200, "HIT", stored]);
    await get(a, "/api/orders/1");
    const purge = await fetch(`${b.admin}/cache/purge`, {
      method: "POST",
      body: JSON.stringify({ prefix: "/api/products" }),
    });
    assertEquals((await purge.json()).purged, 1);
    assertEquals((await get(a, "/api/products/1"))[1], "MISS");
    assertEquals((await get(b, "/api/orders/1"))[1], "HIT");
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("cache (redis): a Redis outage turns the cache off, never the route", async () => {
  const redis = await startRedis();
  let n = 0;
  const up = startUpstream(() => Response.json({ n: ++n }));
  const g = await startGateway(config(up.url, redis.url));
  try {
    await get(g, "/api/x");
    await redis.stop();
    const started = performance.now();
    assertEquals(await get(g, "/api/x"), [200, "MISS", '{"n":2}']);
    assertEquals(await get(g, "/api/x"), [200, "MISS", '{"n":3}']);
    // Fails fast: no waiting on a dead store.
    if (performance.now() - started > 2_000) throw new Error("the outage slowed requests down");
    const purge = await fetch(`${g.admin}/cache/purge`, {
      method: "POST",
      body: JSON.stringify({ prefix: "/" }),
    });
    assertEquals(purge.status, 503);
    assertEquals((await purge.json()).error.code, "store_unavailable");

    await redis.start();
    await untilCached(g, "/api/y");
  } finally {
    await g.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("cache (redis): a Redis cache without a store.redis section is a config error", async () => {
  await assertRejects(
    () =>
      startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - name: r
    match: { path: / }
    upstream: a
    cache: { ttl_s: 5, store: redis }
`)),
    /routes\[0\]\.cache\.store: a Redis cache needs a store\.redis section/,
  );
});

Deno.test("cache (redis): an unsafe request drops its URI's entries on every instance", async () => {
  const redis = await startRedis();
  let n = 0;
  const up = startUpstream((req) =>
    req.method === "GET"
      ? Response.json({ n: ++n }, { headers: { vary: "Accept-Language" } })
      : new Response(null, { status: 204 })
  );
  const yaml = (u: string, r: string) =>
    config(u, r).replace("cache: { ttl_s: 60 }", "cache: { ttl_s: 60, vary: [Accept-Language] }");
  const a = await startGateway(yaml(up.url, redis.url));
  const b = await startGateway(yaml(up.url, redis.url));
  try {
    await untilCached(a, "/api/warm");
    await untilCached(a, "/api/items");
    await untilCached(a, "/api/other");
    const put = await fetch(`${b.url()}/api/items`, { method: "PUT", body: "{}" });
    assertEquals(put.status, 204);
    assertEquals((await get(a, "/api/items"))[1], "MISS");
    assertEquals((await get(a, "/api/other"))[1], "HIT");
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});
