/**
 * Invalidation across routes (RFC 9111 §4.4) through a real listener and upstream, memory
 * store: a write through any route drops what a cached route stored for its URI, and a GET that
 * was upstream while the write happened does not store its answer.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawRequest } from "../helpers/raw.ts";

/** Reads under `/items` cached on one route, writes on another without a cache. */
const splitByMethod = (upstream: string, top = "") =>
  baseConfig(`${top}
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
  - name: read
    match: { path: /items, methods: [GET] }
    upstream: a
    cache: { ttl_s: 60, vary: [Accept-Language] }
  - { name: write, match: { path: /items, methods: [POST, PUT, PATCH, DELETE] }, upstream: a }
  - { name: health, match: { path: /health, methods: [GET] }, upstream: a }
`);

/** An upstream holding a version per path: a write bumps it (409 for paths under /items/locked). */
function versionedUpstream(hold?: (path: string) => Promise<void> | undefined) {
  const versions = new Map<string, number>();
  const version = (path: string) => versions.get(path) ?? 1;
  const up = startUpstream(async (req, r) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET") {
      const v = version(path);
      await hold?.(r.url);
      return Response.json({ path, v }, { headers: { vary: "Accept-Language" } });
    }
    await req.body?.cancel();
    // A write may name a resource in its answer, as the test asks.
    const headers = new Headers();
    for (const field of ["location", "content-location"]) {
      const value = req.headers.get(`x-answer-${field}`);
      if (value !== null) headers.set(field, value);
    }
    if (path.startsWith("/items/locked")) return new Response(null, { status: 409, headers });
    versions.set(path, version(path) + 1);
    return new Response(null, { status: 204, headers });
  });
  const gets = (url: string) =>
    up.received.filter((r) => r.method === "GET" && r.url === url).length;
  return { up, gets };
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${g.url()}${path}`, { headers });
  return { cache: res.headers.get("x-cache"), v: (await res.json()).v as number };
}

async function send(
  g: TestGateway,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(`${g.url()}${path}`, { method, body: "{}", headers });
  await res.body?.cancel();
  return res.status;
}

async function withGateway(
  up: TestServer,
  fn: (g: TestGateway) => Promise<void> | void,
  top = "",
) {
  const g = await startGateway(splitByMethod(up.url, top));
  try {
    await fn(g);
  } finally {
    await g.close();
    await up.close();
  }
}

Deno.test("invalidation: a write through a route without cache drops the cached read of its URI", async () => {
  const { up, gets } = versionedUpstream();
  await withGateway(up, async (g) => {
    const fr = { "accept-language": "fr" };
    for (const p of ["/items/1", "/items/2", "/items?b=2&a=1", "/items/locked"]) {
      assertEquals((await get(g, p)).cache, "MISS");
      assertEquals((await get(g, p)).cache, "HIT");
    }
    assertEquals((await get(g, "/items/1", fr)).cache, "MISS");

    assertEquals(await send(g, "POST", "/items/1"), 204);
    // Every Vary value of the URI goes; the next GET reaches the upstream and sees the change.
    assertEquals(await get(g, "/items/1"), { cache: "MISS", v: 2 });
    assertEquals(await get(g, "/items/1", fr), { cache: "MISS", v: 2 });
    assertEquals(await get(g, "/items/1"), { cache: "HIT", v: 2 });
    assertEquals((await get(g, "/items/2")).cache, "HIT");

    // The query is compared with its pairs sorted, as the cached route keys it.
    assertEquals(await send(g, "PUT", "/items?a=1&b=2"), 204);
    assertEquals((await get(g, "/items?b=2&a=1")).cache, "MISS");

    // A refused write changes nothing; a write to another host is another URI.
    assertEquals(await send(g, "PATCH", "/items/locked"), 409);
    assertEquals((await get(g, "/items/locked")).cache, "HIT");
    const elsewhere = await rawRequest(g.url(), [
      "DELETE /items/2 HTTP/1.1",
      "Host: other.test",
      "Content-Length: 0",
      "Connection: close",
    ]);
    assertEquals(elsewhere.status, 204);
    assertEquals((await get(g, "/items/2")).cache, "HIT");
    assertEquals(await send(g, "DELETE", "/items/2"), 204);
    assertEquals((await get(g, "/items/2")).cache, "MISS");

    assertEquals([gets("/items/1"), gets("/items/2"), gets("/items?b=2&a=1")], [4, 2, 2]);
  });
});

Deno.test("invalidation: a write's Location and Content-Location on its origin are dropped too", async () => {
  const { up } = versionedUpstream();
  await withGateway(up, async (g) => {
    const paths = ["/items/4", "/items/5?b=1&a=2", "/items/6", "/items/7", "/items/8"];
    for (const p of paths) {
      assertEquals((await get(g, p)).cache, "MISS");
      assertEquals((await get(g, p)).cache, "HIT");
    }
    const origin = g.url();
    const port = Number(new URL(origin).port);
    const status = (path: string, field: string, value: string) =>
      send(g, path === "/items" ? "POST" : "PUT", path, { [`x-answer-${field}`]: value });

    // Relative to the request's URI, absolute on its origin, the query compared sorted.
    assertEquals(await status("/items", "location", "/items/4"), 204);
    assertEquals(await status("/items/3", "content-location", `${origin}/items/5?a=2&b=1`), 204);
    assertEquals(await status("/items/3", "location", "./x/../6"), 204);
    for (const p of paths.slice(0, 3)) assertEquals((await get(g, p)).cache, "MISS", p);

    // Another host, port or scheme is another origin; a refused write changes nothing.
    for (
      const other of [
        "http://other.test/items/7",
        `http://127.0.0.1:${port === 1 ? 2 : port - 1}/items/7`,
        `https://127.0.0.1:${port}/items/7`,
        "http://[not a uri/items/7",
      ]
    ) assertEquals(await status("/items", "location", other), 204, other);
    assertEquals(await status("/items/locked", "location", "/items/8"), 409);
    for (const p of paths.slice(3)) assertEquals((await get(g, p)).cache, "HIT", p);
  });
});

Deno.test("invalidation: behind a trusted proxy, a named URI is on the origin the upstream was told", async () => {
  const { up } = versionedUpstream();
  await withGateway(up, async (g) => {
    // A balancer that ends TLS: the upstream is told https, and builds its links with it.
    const https = { "x-forwarded-proto": "https" };
    const authority = new URL(g.url()).host;
    for (const p of ["/items/7", "/items/8"]) {
      await get(g, p, https);
      assertEquals((await get(g, p, https)).cache, "HIT", p);
    }
    const created = { ...https, "x-answer-location": `https://${authority}/items/7` };
    assertEquals(await send(g, "POST", "/items", created), 204);
    assertEquals((await get(g, "/items/7", https)).cache, "MISS");
    // The listener's own scheme is another origin than the one the client used.
    const plain = { ...https, "x-answer-location": `http://${authority}/items/8` };
    assertEquals(await send(g, "POST", "/items", plain), 204);
    assertEquals((await get(g, "/items/8", https)).cache, "HIT");
  }, "security: { trusted_proxies: [127.0.0.1] }");
});

Deno.test("invalidation: only routes that may write get the hook, and none without a cache", async () => {
  const { up } = versionedUpstream();
  await withGateway(up, (g) => {
    const chain = (name: string) =>
      g.gw.plan.routes.find((r) => r.name === name)!.policies.filter((p) => p.startsWith("cache"));
    assertEquals(chain("read"), ["cache"]);
    assertEquals(chain("write"), ["cache_invalidation"]);
    assertEquals(chain("health"), []);
  });
  const plain = await startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: any, match: { path: / }, upstream: a }
`));
  try {
    assertEquals(plain.gw.plan.routes[0]!.policies.filter((p) => p.startsWith("cache")), []);
  } finally {
    await plain.close();
  }
});

/** A promise with its resolver, for an upstream to wait on. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The versioned upstream, holding its answer to the first GET of `url` until `release`. */
function firstGetHeld(url: string) {
  const arrived = deferred();
  const release = deferred();
  let holding = true;
  const { up, gets } = versionedUpstream((at) => {
    if (at !== url || !holding) return undefined;
    holding = false;
    arrived.resolve();
    return release.promise;
  });
  return { up, gets, arrived, release };
}

Deno.test("invalidation: a GET upstream while its URI is written answers but does not store", async () => {
  const { up, gets, arrived, release } = firstGetHeld("/items/1");
  await withGateway(up, async (g) => {
    // The GET reads version 1 upstream, then its answer is held until the write is done.
    const slow = get(g, "/items/1");
    await arrived.promise;
    assertEquals(await send(g, "PUT", "/items/1"), 204);
    release.resolve();
    assertEquals(await slow, { cache: "MISS", v: 1 });
    // Stored, version 1 would be served until its TTL.
    assertEquals(await get(g, "/items/1"), { cache: "MISS", v: 2 });
    assertEquals(await get(g, "/items/1"), { cache: "HIT", v: 2 });
    assertEquals(gets("/items/1"), 2);
    assertEquals(g.gw.deps.caches.fills.size, 0);
  });
});

Deno.test("invalidation: a GET that began after the write stores its answer", async () => {
  const { up } = versionedUpstream();
  await withGateway(up, async (g) => {
    assertEquals(await send(g, "POST", "/items/1"), 204);
    assertEquals(await get(g, "/items/1"), { cache: "MISS", v: 2 });
    assertEquals(await get(g, "/items/1"), { cache: "HIT", v: 2 });
    assertOk(g.gw.deps.caches.memory.entries === 1);
  });
});

Deno.test("invalidation: a GET upstream while the admin API purges its path answers but does not store", async () => {
  const { up, gets, arrived, release } = firstGetHeld("/items/1");
  await withGateway(up, async (g) => {
    const slow = get(g, "/items/1");
    await arrived.promise;
    const purge = await fetch(`${g.admin}/cache/purge`, {
      method: "POST",
      body: JSON.stringify({ prefix: "/items" }),
    });
    assertEquals((await purge.json()).purged, 0);
    release.resolve();
    assertEquals(await slow, { cache: "MISS", v: 1 });
    // Until 2026-12-08 the answer read before the purge was stored after it, for its whole TTL.
    assertEquals(await get(g, "/items/1"), { cache: "MISS", v: 1 });
    assertEquals(await get(g, "/items/1"), { cache: "HIT", v: 1 });
    assertEquals(gets("/items/1"), 2);
    assertEquals(g.gw.deps.caches.fills.size, 0);
  });
});
