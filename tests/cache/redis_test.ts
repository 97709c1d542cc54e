/** The Redis cache store against a real redis-server: shared by instances, purged, failing open. */
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { redisCommand, startRedis } from "../helpers/redis.ts";
import { rawGet } from "../helpers/raw.ts";
import { ManualClock } from "../../lib/core/clock.ts";

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
 * A GET with the Host a balancer in front of the instances passes each: what they share. The
 * port is part of the key, and each test gateway listens on a port of its own.
 */
async function viaBalancer(g: TestGateway, path: string) {
  const res = await rawGet(g.url(), path, "api.test");
  return [res.status, res.headers.get("x-cache"), res.body];
}

/**
 * Repeats a GET until it is a HIT (the store is connected and the write landed), for up to
 * 10 s: connecting, or reconnecting after an outage, can take seconds on a loaded machine.
 */
async function untilCached(g: TestGateway, path: string, read = get): Promise<void> {
  for (const end = performance.now() + 10_000; performance.now() < end;) {
    if ((await read(g, path))[1] === "HIT") return;
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
    const [status, cache, stored] = await viaBalancer(a, "/api/products/1");
    assertEquals([status, cache], [200, "MISS"]);
    await untilCached(b, "/api/products/1", viaBalancer);
    assertEquals(await viaBalancer(b, "/api/products/1"), [200, "HIT", stored]);
    await viaBalancer(a, "/api/orders/1");
    const purge = await fetch(`${b.admin}/cache/purge`, {
      method: "POST",
      body: JSON.stringify({ prefix: "/api/products" }),
    });
    assertEquals((await purge.json()).purged, 1);
    assertEquals((await viaBalancer(a, "/api/products/1"))[1], "MISS");
    assertEquals((await viaBalancer(b, "/api/orders/1"))[1], "HIT");
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

/** Reads under `/items` cached on one route, writes on another without a cache. */
const splitByMethod = (upstream: string, redis: string) =>
  baseConfig(`
store: { kind: redis, redis: { url: "${redis}", prefix: "gwtest:", timeout_ms: 200 } }
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
  - name: read
    match: { path: /items, methods: [GET] }
    upstream: a
    cache: { ttl_s: 60, vary: [Accept-Language] }
  - { name: write, match: { path: /items, methods: [POST, PUT, PATCH, DELETE] }, upstream: a }
`);

/**
 * An upstream holding a version per path that a write bumps; `hold` may keep a GET's answer,
 * read before it waits, until the promise it returns settles.
 */
function versionedUpstream(hold: (url: string) => Promise<void> | undefined = () => undefined) {
  const versions = new Map<string, number>();
  return startUpstream(async (req, r) => {
    const path = new URL(req.url).pathname;
    const v = versions.get(path) ?? 1;
    if (req.method === "GET") {
      await hold(r.url);
      return Response.json({ v }, { headers: { vary: "Accept-Language" } });
    }
    await req.body?.cancel();
    versions.set(path, v + 1);
    return new Response(null, { status: 204 });
  });
}

async function send(g: TestGateway, method: string, path: string): Promise<number> {
  const res = await fetch(`${g.url()}${path}`, { method, body: "{}" });
  await res.body?.cancel();
  return res.status;
}

Deno.test("cache (redis): a write through a route without cache drops the cached read on every instance", async () => {
  const redis = await startRedis();
  const up = versionedUpstream();
  const a = await startGateway(splitByMethod(up.url, redis.url));
  const b = await startGateway(splitByMethod(up.url, redis.url));
  try {
    await untilCached(a, "/items/warm");
    await untilCached(b, "/items/warm-b");
    await untilCached(a, "/items/1");
    await untilCached(a, "/items/2");
    const fr = await fetch(`${a.url()}/items/1`, { headers: { "accept-language": "fr" } });
    assertEquals([fr.headers.get("x-cache"), await fr.text()], ["MISS", '{"v":1}']);
    assertEquals(await send(b, "POST", "/items/1"), 204);
    assertEquals(await get(a, "/items/1"), [200, "MISS", '{"v":2}']);
    const frAfter = await fetch(`${a.url()}/items/1`, { headers: { "accept-language": "fr" } });
    assertEquals([frAfter.headers.get("x-cache"), await frAfter.text()], ["MISS", '{"v":2}']);
    assertEquals((await get(a, "/items/2"))[1], "HIT");
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("cache (redis): a GET upstream while another instance writes its URI does not store", async () => {
  const redis = await startRedis();
  const clock = new ManualClock(1_700_000_000_000);
  let arrived!: () => void;
  const arrival = new Promise<void>((r) => (arrived = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let holding = false;
  const up = versionedUpstream((url) => {
    if (url !== "/items/1" || !holding) return undefined;
    holding = false;
    arrived();
    return released;
  });
  const a = await startGateway(splitByMethod(up.url, redis.url), { clock });
  const b = await startGateway(splitByMethod(up.url, redis.url), { clock });
  try {
    await untilCached(a, "/items/warm");
    await untilCached(b, "/items/warm-b");
    holding = true;
    // Instance a reads version 1; its answer is held until instance b's write is done.
    const slow = get(a, "/items/1");
    await arrival;
    clock.advance(1_000);
    assertEquals(await send(b, "PUT", "/items/1"), 204);
    release();
    assertEquals(await slow, [200, "MISS", '{"v":1}']);
    // One connection to Redis: a store a sent would land before this lookup.
    assertEquals(await get(a, "/items/1"), [200, "MISS", '{"v":2}']);
    // A GET that began after the write stores its answer.
    clock.advance(1_000);
    assertEquals(await get(a, "/items/1"), [200, "MISS", '{"v":2}']);
    assertEquals(await get(a, "/items/1"), [200, "HIT", '{"v":2}']);
  } finally {
    await a.close();
    await b.close();
    await up.close();
    await redis.close();
  }
});

Deno.test("cache (redis): an API key sent in the query is not part of a key, nor of any Redis key name", async () => {
  const redis = await startRedis();
  let n = 0;
  const up = startUpstream((req) => Response.json({ n: ++n, query: new URL(req.url).search }));
  const g = await startGateway(baseConfig(`
store: { kind: redis, redis: { url: "${redis.url}", prefix: "gwtest:", timeout_ms: 200 } }
auth:
  keys: { kind: api_key, header: X-API-Key, query: api_key }
consumers:
  - { id: alice, api_keys: ["alice-secret-one", "alice-secret-two"] }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: catalog, match: { path: /api }, upstream: a, auth: [keys], cache: { ttl_s: 60 } }
`));
  try {
    await untilCached(g, "/api/warm?api_key=alice-secret-one");
    const first = await get(g, "/api/items?page=2&api_key=alice-secret-one");
    assertEquals(first.slice(0, 2), [200, "MISS"]);
    assertEquals(JSON.parse(first[2] as string).query, "?page=2");
    // The same caller and the same request upstream: one entry, whichever of her keys.
    assertEquals(await get(g, "/api/items?api_key=alice-secret-two&page=2"), [
      200,
      "HIT",
      first[2],
    ]);
    const names = await redisCommand(redis.port, "KEYS *");
    assertEquals(names.includes("gwtest:"), true, names);
    assertEquals(names.includes("secret"), false, names);
  } finally {
    await g.close();
    await up.close();
    await redis.close();
  }
});
