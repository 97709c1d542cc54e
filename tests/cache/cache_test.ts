/** The response cache through a real listener and upstream (memory store). */
import { assertEquals, assertError, assertOk, assertRejects } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawGet } from "../helpers/raw.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { startFlaky } from "../resilience/flaky.ts";

/** An upstream whose answer to each path is chosen by `answer`; it counts requests per path. */
function countingUpstream(
  answer: (path: string, n: number, req: Request) => Response | Promise<Response>,
) {
  const counts = new Map<string, number>();
  const up = startUpstream((req, r) => {
    const path = r.url;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    return answer(path, n, req);
  });
  return { up, count: (path: string) => counts.get(path) ?? 0 };
}

const json = (body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    headers: { "content-type": "application/json", ...headers },
  });

async function withCache(
  up: Pick<TestServer, "url" | "close">,
  cache: string,
  fn: (g: TestGateway, clock: ManualClock) => Promise<void>,
  extra = "",
): Promise<void> {
  const clock = new ManualClock(1_700_000_000_000);
  const g = await startGateway(
    baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: catalog, match: { path: /api }, upstream: a, cache: ${cache} }
${extra}
`),
    { clock },
  );
  try {
    await fn(g, clock);
  } finally {
    await g.close();
    await up.close();
  }
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${g.url()}${path}`, { headers });
  return { res, body: await res.text(), cache: res.headers.get("x-cache") };
}

Deno.test("cache: a GET is stored, then served with X-Cache and Age until its TTL", async () => {
  const { up, count } = countingUpstream((_p, n) => json({ n }));
  await withCache(up, "{ ttl_s: 30 }", async (g, clock) => {
    const first = await get(g, "/api/products");
    assertEquals([first.cache, first.body], ["MISS", '{"n":1}']);
    clock.advance(12_000);
    const second = await get(g, "/api/products");
    assertEquals([second.cache, second.body], ["HIT", '{"n":1}']);
    assertEquals(second.res.headers.get("age"), "12");
    assertEquals(second.res.headers.get("content-type"), "application/json");
    assertOk(second.res.headers.get("x-request-id"));
    const head = await fetch(`${g.url()}/api/products`, { method: "HEAD" });
    assertEquals([head.headers.get("x-cache"), await head.text()], ["HIT", ""]);
    // The same fields as the GET, the body's length among them.
    assertEquals(head.headers.get("content-length"), "7");
    clock.advance(18_000);
    const expired = await get(g, "/api/products");
    assertEquals([expired.cache, expired.body], ["MISS", '{"n":2}']);
    assertEquals(count("/api/products"), 2);
  });
});

Deno.test("cache: the key takes the query (sorted), the host and configured Vary headers", async () => {
  const { up } = countingUpstream((p, n) => json({ p, n }, { vary: "Accept-Language" }));
  await withCache(up, "{ ttl_s: 60, vary: [Accept-Language] }", async (g) => {
    assertEquals((await get(g, "/api?b=2&a=1")).cache, "MISS");
    assertEquals((await get(g, "/api?a=1&b=2")).cache, "HIT");
    assertEquals((await get(g, "/api?a=1&b=3")).cache, "MISS");
    assertEquals((await get(g, "/api?a=1&b=2", { "accept-language": "fr" })).cache, "MISS");
    assertEquals((await get(g, "/api?a=1&b=2", { "accept-language": "fr" })).cache, "HIT");
    const otherHost = await rawGet(g.url(), "/api?a=1&b=2", "other.test");
    assertEquals(otherHost.headers.get("x-cache"), "MISS");
    assertEquals(up.received.length, 4);
  });
});

Deno.test("cache: the sorted query is compared as sent, never decoded", async () => {
  const { up } = countingUpstream((p, n) => json({ p, n }));
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    const ff = await get(g, "/api?x=1&id=%ff");
    assertEquals([ff.cache, JSON.parse(ff.body).p], ["MISS", "/api?x=1&id=%ff"]);
    // Both invalid escapes decode to U+FFFD; they are still two queries.
    const fe = await get(g, "/api?x=1&id=%fe");
    assertEquals([fe.cache, JSON.parse(fe.body).p], ["MISS", "/api?x=1&id=%fe"]);
    assertEquals((await get(g, "/api?id=%ff&x=1")).cache, "HIT");
    assertEquals((await get(g, "/api?q=a+b")).cache, "MISS");
    assertEquals((await get(g, "/api?q=a%20b")).cache, "MISS");
    // Repeated names keep their order; other names sort around them.
    assertEquals((await get(g, "/api?b=1&a=2&a=1")).cache, "MISS");
    assertEquals((await get(g, "/api?a=2&b=1&a=1")).cache, "HIT");
    assertEquals((await get(g, "/api?a=1&a=2&b=1")).cache, "MISS");
  });
});

Deno.test("cache: a query of more than 256 pairs is keyed as sent, not sorted", async () => {
  const { up } = countingUpstream((p, n) => json({ p, n }));
  const pairs = (count: number) => Array.from({ length: count }, (_, i) => `p${i}=${i}`);
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    const at = (list: string[]) => get(g, `/api?${list.join("&")}`);
    assertEquals((await at(pairs(256))).cache, "MISS");
    assertEquals((await at(pairs(256).reverse())).cache, "HIT");
    // Sorting is n log n comparisons on every miss: past 256 pairs, another order is another entry.
    assertEquals((await at(pairs(257))).cache, "MISS");
    assertEquals((await at(pairs(257))).cache, "HIT");
    assertEquals((await at(pairs(257).reverse())).cache, "MISS");
  });
});

Deno.test("cache: no-store, private, no-cache, Set-Cookie, Vary * and errors are never stored", async () => {
  const answers: Record<string, Record<string, string>> = {
    "/api/no-store": { "cache-control": "no-store" },
    "/api/private": { "cache-control": "private, max-age=60" },
    "/api/no-cache": { "cache-control": "no-cache" },
    "/api/cookie": { "set-cookie": "session=abc" },
    "/api/vary-star": { "vary": "*" },
    "/api/vary-unlisted": { "vary": "Cookie" },
    "/api/zero": { "cache-control": "max-age=0" },
    "/api/expired": { "expires": "Thu, 01 Jan 1970 00:00:00 GMT" },
  };
  const { up, count } = countingUpstream((p, n) =>
    p === "/api/error" ? new Response("boom", { status: 500 }) : json({ n }, answers[p])
  );
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    for (const path of [...Object.keys(answers), "/api/error"]) {
      for (let i = 0; i < 2; i++) assertEquals((await get(g, path)).cache, "MISS", path);
      assertEquals(count(path), 2, path);
    }
  });
});

Deno.test('cache: vary: ["*"] is a load error, not a way to store answers with Vary: *', async () => {
  await assertRejects(
    () =>
      startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: /r }, upstream: a, cache: { ttl_s: 60, vary: ["*"] } }
`)),
    (e: Error) => /routes\[0\]\.cache\.vary\[0\]: \* is not a header/.test(e.message),
  );
});

Deno.test("cache: the upstream's max-age, s-maxage and Age shorten the TTL", async () => {
  const { up, count } = countingUpstream((p, n) =>
    json(
      { n },
      {
        "/api/max-age": { "cache-control": "public, max-age=5" },
        "/api/s-maxage": { "cache-control": "max-age=100, s-maxage=10" },
        "/api/aged": { "cache-control": "max-age=20", "age": "15" },
      }[p] ?? {},
    )
  );
  await withCache(up, "{ ttl_s: 60 }", async (g, clock) => {
    for (const p of ["/api/max-age", "/api/s-maxage", "/api/aged"]) await get(g, p);
    clock.advance(4_000);
    assertEquals((await get(g, "/api/max-age")).cache, "HIT");
    const aged = await get(g, "/api/aged");
    assertEquals([aged.cache, aged.res.headers.get("age")], ["HIT", "19"]);
    clock.advance(2_000);
    assertEquals((await get(g, "/api/max-age")).cache, "MISS");
    assertEquals((await get(g, "/api/aged")).cache, "MISS");
    assertEquals((await get(g, "/api/s-maxage")).cache, "HIT");
    clock.advance(5_000);
    assertEquals((await get(g, "/api/s-maxage")).cache, "MISS");
    assertEquals([count("/api/max-age"), count("/api/s-maxage"), count("/api/aged")], [2, 2, 2]);
  });
});

Deno.test("cache: 100 concurrent misses for one key cause one upstream request", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { up, count } = countingUpstream(async (_p, n) => {
    await gate;
    return json({ n });
  });
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    const all = Array.from({ length: 100 }, () => get(g, "/api/hot"));
    // Every request is waiting at the gateway before the upstream answers, as the test's name
    // says: a fixed 100 ms did not make sure of it on a loaded machine.
    try {
      const end = performance.now() + 30_000;
      while ((g.gw.plan.inFlight < 100 || count("/api/hot") === 0) && performance.now() < end) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assertEquals([g.gw.plan.inFlight, count("/api/hot")], [100, 1]);
    } finally {
      release();
    }
    const results = await Promise.all(all);
    assertEquals(count("/api/hot"), 1);
    assertOk(results.every((r) => r.body === '{"n":1}'));
    assertEquals(results.filter((r) => r.cache === "MISS").length, 1);
    assertEquals(results.filter((r) => r.cache === "HIT").length, 99);
  });
});

Deno.test("cache: only GET and HEAD are cached; credentials the gateway did not check bypass it", async () => {
  const { up, count } = countingUpstream((_p, n) => json({ n }));
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${g.url()}/api/items`, { method: "POST", body: "{}" });
      assertEquals(res.headers.get("x-cache"), null);
      await res.body?.cancel();
    }
    assertEquals(count("/api/items"), 2);
    const mine = await get(g, "/api/me", { authorization: "Bearer alice" });
    assertEquals(mine.cache, "BYPASS");
    assertEquals((await get(g, "/api/me", { authorization: "Bearer bob" })).cache, "BYPASS");
    // Nothing was stored for the anonymous caller either.
    assertEquals((await get(g, "/api/me")).cache, "MISS");
    assertEquals(count("/api/me"), 3);
  });
});

Deno.test("cache: a request with Cookie bypasses the cache unless vary lists it or cookies are ignored", async () => {
  // An upstream that personalises by cookie and says nothing of it (no private, no Vary).
  const personal = () =>
    countingUpstream((_p, n, req) => json({ n, who: req.headers.get("cookie") ?? "anonymous" }));
  {
    const { up, count } = personal();
    await withCache(up, "{ ttl_s: 60 }", async (g) => {
      const alice = await get(g, "/api/me", { cookie: "session=alice" });
      assertEquals([alice.cache, JSON.parse(alice.body).who], ["BYPASS", "session=alice"]);
      const bob = await get(g, "/api/me", { cookie: "session=bob" });
      assertEquals([bob.cache, JSON.parse(bob.body).who], ["BYPASS", "session=bob"]);
      // Nothing of theirs was stored: the anonymous caller fills its own entry.
      assertEquals(JSON.parse((await get(g, "/api/me")).body).who, "anonymous");
      const again = await get(g, "/api/me");
      assertEquals([again.cache, JSON.parse(again.body).who], ["HIT", "anonymous"]);
      assertEquals(count("/api/me"), 3);
    });
  }
  {
    const { up, count } = personal();
    await withCache(up, "{ ttl_s: 60, vary: [Cookie] }", async (g) => {
      assertEquals((await get(g, "/api/me", { cookie: "session=alice" })).cache, "MISS");
      const bob = await get(g, "/api/me", { cookie: "session=bob" });
      assertEquals([bob.cache, JSON.parse(bob.body).who], ["MISS", "session=bob"]);
      const alice = await get(g, "/api/me", { cookie: "session=alice" });
      assertEquals([alice.cache, JSON.parse(alice.body).who], ["HIT", "session=alice"]);
      assertEquals(count("/api/me"), 2);
    });
  }
  {
    const { up, count } = personal();
    await withCache(up, "{ ttl_s: 60, ignore_cookies: true }", async (g) => {
      assertEquals((await get(g, "/api/me", { cookie: "_ga=1" })).cache, "MISS");
      assertEquals((await get(g, "/api/me", { cookie: "_ga=2" })).cache, "HIT");
      assertEquals(count("/api/me"), 1);
    });
  }
  await assertRejects(
    () =>
      startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: /r }, upstream: a,
      cache: { ttl_s: 60, vary: [Cookie], ignore_cookies: true } }
`)),
    (e: Error) =>
      /gateway\.yaml:\d+:\d+: routes\[0\]\.cache\.ignore_cookies: ignore_cookies contradicts vary: \[Cookie\]/
        .test(e.message),
  );
});

Deno.test("cache: a request with Range bypasses the cache; 206 is not a cacheable status", async () => {
  const ranged = startUpstream((req) =>
    req.headers.has("range")
      ? new Response("hell", { status: 206, headers: { "content-range": "bytes 0-3/7" } })
      : new Response("hello 1")
  );
  await withCache(ranged, "{ ttl_s: 60 }", async (g) => {
    const part = await get(g, "/api/file", { range: "bytes=0-3" });
    assertEquals([part.res.status, part.cache, part.body], [206, "BYPASS", "hell"]);
    const whole = await get(g, "/api/file");
    assertEquals([whole.res.status, whole.cache, whole.body], [200, "MISS", "hello 1"]);
    const again = await get(g, "/api/file", { range: "bytes=0-3" });
    assertEquals([again.res.status, again.cache, again.body], [206, "BYPASS", "hell"]);
    assertEquals((await get(g, "/api/file")).cache, "HIT");
    assertEquals(ranged.received.length, 3);
  });
  await assertRejects(
    () =>
      startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: /r }, upstream: a, cache: { ttl_s: 60, statuses: [200, 206] } }
`)),
    (e: Error) => /routes\[0\]\.cache\.statuses\[1\]: 206 cannot be cached/.test(e.message),
  );
});

Deno.test("cache: stale-if-error serves the expired entry when the upstream fails", async () => {
  let failing = false;
  const { up, count } = countingUpstream((_p, n) =>
    failing ? new Response("down", { status: 503 }) : json({ n })
  );
  await withCache(up, "{ ttl_s: 10, stale_if_error_s: 60 }", async (g, clock) => {
    assertEquals((await get(g, "/api/p")).cache, "MISS");
    failing = true;
    clock.advance(20_000);
    const stale = await get(g, "/api/p");
    assertEquals([stale.res.status, stale.cache, stale.body], [200, "STALE", '{"n":1}']);
    assertEquals(stale.res.headers.get("age"), "20");
    clock.advance(60_000);
    const gone = await get(g, "/api/p");
    assertEquals([gone.res.status, gone.cache], [503, "MISS"]);
    failing = false;
    assertEquals((await get(g, "/api/p")).body, '{"n":4}');
    assertEquals(count("/api/p"), 4);
  });
});

Deno.test("cache: stale-if-error never serves what the upstream said to revalidate", async () => {
  let failing = false;
  const { up } = countingUpstream((p, n) =>
    failing ? new Response("down", { status: 503 }) : json(
      { n },
      {
        "/api/plain": { "cache-control": "max-age=1" },
        "/api/must": { "cache-control": "max-age=1, must-revalidate" },
        "/api/proxy": { "cache-control": "max-age=1, proxy-revalidate" },
        "/api/shared": { "cache-control": "s-maxage=1" },
      }[p],
    )
  );
  await withCache(up, "{ ttl_s: 60, stale_if_error_s: 300 }", async (g, clock) => {
    const paths = ["/api/plain", "/api/must", "/api/proxy", "/api/shared"];
    for (const p of paths) assertEquals((await get(g, p)).cache, "MISS", p);
    failing = true;
    clock.advance(2_000);
    const plain = await get(g, "/api/plain");
    assertEquals([plain.res.status, plain.cache], [200, "STALE"]);
    for (const p of paths.slice(1)) {
      const r = await get(g, p);
      assertEquals([r.res.status, r.cache, r.body], [503, "MISS", "down"], p);
    }
  });
});

Deno.test("cache: stale-if-error also covers an upstream that cannot be reached", async () => {
  const { up } = countingUpstream((_p, n) => json({ n }));
  await withCache(up, "{ ttl_s: 1, stale_if_error_s: 30 }", async (g, clock) => {
    assertEquals((await get(g, "/api/p")).cache, "MISS");
    await up.close();
    clock.advance(5_000);
    const stale = await get(g, "/api/p");
    assertEquals([stale.res.status, stale.cache, stale.body], [200, "STALE", '{"n":1}']);
    await assertError(await fetch(`${g.url()}/raw`), 502, "bad_gateway");
  }, "  - { name: nocache, match: { path: /raw }, upstream: a }");
});

Deno.test("cache: purge by path prefix through the admin API; entries survive a reload", async () => {
  const { up, count } = countingUpstream((_p, n) => json({ n }));
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    for (const p of ["/api/products/1", "/api/products/2", "/api/orders/1"]) await get(g, p);
    // A reload that keeps the route keeps its entries.
    await Deno.writeTextFile(g.file, (await Deno.readTextFile(g.file)) + "\n# touched\n");
    assertEquals((await g.gw.reload()).ok, true);
    assertEquals((await get(g, "/api/products/1")).cache, "HIT");

    const purge = await fetch(`${g.admin}/cache/purge`, {
      method: "POST",
      body: JSON.stringify({ prefix: "/api/products" }),
    });
    assertEquals(purge.status, 200);
    assertEquals((await purge.json()).purged, 2);
    assertEquals((await get(g, "/api/products/1")).cache, "MISS");
    assertEquals((await get(g, "/api/products/2")).cache, "MISS");
    assertEquals((await get(g, "/api/orders/1")).cache, "HIT");
    assertEquals(count("/api/orders/1"), 1);

    const stats = await (await fetch(`${g.admin}/cache`)).json();
    assertEquals(stats.memory.entries, 3);
    const bad = await fetch(`${g.admin}/cache/purge`, { method: "POST", body: '{"prefix": 3}' });
    await assertError(bad, 400, "bad_request");
  });
});

Deno.test("cache: a reload that fails leaves the memory cache's budget and entries as they were", async () => {
  const { up, count } = countingUpstream((_p, n) => json({ n }));
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    const paths = ["/api/1", "/api/2", "/api/3"];
    for (const p of paths) assertEquals((await get(g, p)).cache, "MISS");
    // A budget of one byte, in a config whose second route is refused when the plan is built.
    await Deno.writeTextFile(
      g.file,
      "store: { memory: { cache_max_bytes: 1 } }\n" + (await Deno.readTextFile(g.file)) +
        "  - { name: bad, match: { path: /b }, upstream: a, rate_limit: { algorithm: " +
        "fixed_window, limit: 1, per: 1h, key: consumer } }\n",
    );
    assertEquals((await g.gw.reload()).ok, false);
    // Until 2026-12-08 the rejected config's budget applied all the same: every entry was evicted.
    for (const p of paths) assertEquals((await get(g, p)).cache, "HIT", p);
    for (const p of paths) assertEquals(count(p), 1, p);
  });
});

Deno.test("cache: a reload that changes what shapes the route's responses starts afresh", async () => {
  const { up } = countingUpstream((_p, n) => json({ n, secret: "s" }));
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    assertEquals((await get(g, "/api/p")).body, '{"n":1,"secret":"s"}');
    const text = await Deno.readTextFile(g.file);
    await Deno.writeTextFile(
      g.file,
      text.replace(
        "cache: { ttl_s: 60 } }",
        "cache: { ttl_s: 60 }, transform: { response: { json: { remove: [secret] } } } }",
      ),
    );
    assertEquals((await g.gw.reload()).ok, true);
    const after = await get(g, "/api/p");
    assertEquals([after.cache, after.body], ["MISS", '{"n":2}']);
  });
});

Deno.test("cache: responses larger than max_body_bytes pass through unstored", async () => {
  const big = "x".repeat(10_000);
  const { up, count } = countingUpstream(() => new Response(big));
  await withCache(up, "{ ttl_s: 60, max_body_bytes: 4096 }", async (g) => {
    for (let i = 0; i < 2; i++) {
      const r = await get(g, "/api/big");
      assertEquals([r.cache, r.body.length], ["MISS", 10_000]);
    }
    assertEquals(count("/api/big"), 2);
  });
});

Deno.test("cache: validators are answered from the entry; the entry is filled unconditionally", async () => {
  const { up, count } = countingUpstream((_p, n) =>
    json({ n }, { etag: '"v1"', "last-modified": "Tue, 01 Jul 2025 12:00:00 GMT" })
  );
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    // A revalidating browser's first request still fills the cache with the full answer.
    const first = await get(g, "/api/v", { "if-none-match": '"v1"' });
    assertEquals([first.res.status, first.cache], [304, "MISS"]);
    assertEquals(up.received[0]!.headers.get("if-none-match"), null);
    const full = await get(g, "/api/v");
    assertEquals([full.res.status, full.cache, full.body], [200, "HIT", '{"n":1}']);
    const weak = await get(g, "/api/v", { "if-none-match": 'W/"v0", W/"v1"' });
    assertEquals([weak.res.status, weak.body, weak.res.headers.get("etag")], [304, "", '"v1"']);
    assertEquals(weak.res.headers.get("content-type"), null);
    const other = await get(g, "/api/v", { "if-none-match": '"v2"' });
    assertEquals(other.res.status, 200);
    const since = await get(g, "/api/v", { "if-modified-since": "Wed, 02 Jul 2025 00:00:00 GMT" });
    assertEquals(since.res.status, 304);
    const before = await get(g, "/api/v", { "if-modified-since": "Mon, 30 Jun 2025 00:00:00 GMT" });
    assertEquals(before.res.status, 200);
    assertEquals(count("/api/v"), 1);
  });
});

Deno.test("cache: an unsafe request the upstream accepts drops its URI's entries, all variants", async () => {
  const { up, count } = countingUpstream((p, n, req) =>
    req.method === "GET"
      ? json({ p, n }, { vary: "Accept-Language" })
      : new Response(null, { status: p === "/api/refused" ? 409 : 204 })
  );
  await withCache(up, "{ ttl_s: 60, vary: [Accept-Language] }", async (g) => {
    const send = async (method: string, path: string) => {
      const res = await fetch(`${g.url()}${path}`, { method, body: "{}" });
      await res.body?.cancel();
    };
    const fr = { "accept-language": "fr" };
    for (const p of ["/api/items", "/api/items?page=2", "/api/refused"]) await get(g, p);
    await get(g, "/api/items", fr);
    await send("POST", "/api/items");
    // Every Accept-Language of /api/items goes; another query is another URI.
    assertEquals((await get(g, "/api/items")).cache, "MISS");
    assertEquals((await get(g, "/api/items", fr)).cache, "MISS");
    assertEquals((await get(g, "/api/items?page=2")).cache, "HIT");
    await send("DELETE", "/api/items?page=2");
    assertEquals((await get(g, "/api/items?page=2")).cache, "MISS");
    // A refused change changes nothing.
    await send("PUT", "/api/refused");
    assertEquals((await get(g, "/api/refused")).cache, "HIT");
    assertEquals([count("/api/items"), count("/api/items?page=2")], [5, 3]);
  });
});

Deno.test("cache: the answer to a request with Cache-Control: no-store is not stored", async () => {
  const { up, count } = countingUpstream((_p, n) => json({ n }));
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    const noStore = { "cache-control": "max-age=0, No-Store" };
    const first = await get(g, "/api/p", noStore);
    assertEquals([first.cache, first.body], ["MISS", '{"n":1}']);
    assertEquals((await get(g, "/api/p")).body, '{"n":2}');
    // An entry stored for another request may still answer it.
    const hit = await get(g, "/api/p", noStore);
    assertEquals([hit.cache, hit.body], ["HIT", '{"n":2}']);
    assertEquals(count("/api/p"), 2);
  });
});

Deno.test("cache: validators kept from the upstream are answered from an answer that is not stored", async () => {
  const { up, count } = countingUpstream((_p, n, req) => {
    const headers = { "cache-control": "no-cache", etag: '"v1"', "set-cookie": "seen=1" };
    if (req.headers.get("if-none-match") === '"v1"') {
      return new Response(null, { status: 304, headers });
    }
    return json({ n }, headers);
  });
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    const again = await get(g, "/api/doc", { "if-none-match": '"v1"' });
    assertEquals([again.res.status, again.cache, again.body], [304, "MISS", ""]);
    assertEquals(again.res.headers.get("etag"), '"v1"');
    assertEquals(again.res.headers.get("set-cookie"), "seen=1");
    assertEquals(again.res.headers.get("content-type"), null);
    const changed = await get(g, "/api/doc", { "if-none-match": '"v0"' });
    assertEquals([changed.res.status, changed.body], [200, '{"n":2}']);
    assertEquals(count("/api/doc"), 2);
  });
});

Deno.test("cache: the upstream's Age is added to, never lowered, also for the answer that fills and its waiters", async () => {
  let clock!: ManualClock;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { up, count } = countingUpstream(async (_p, n) => {
    await gate;
    // The upstream took 2.5 s to answer.
    clock.advance(2_500);
    return json({ n }, { "cache-control": "max-age=60", age: "30" });
  });
  await withCache(up, "{ ttl_s: 120 }", async (g, c) => {
    clock = c;
    const lead = get(g, "/api/aged");
    const end = performance.now() + 30_000;
    while (count("/api/aged") === 0 && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    clock.advance(1_000);
    const waiter = get(g, "/api/aged");
    while (g.gw.plan.inFlight < 2 && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    release();
    const [first, second] = await Promise.all([lead, waiter]);
    // 30 s old when sent, plus the 3.5 s since the request that fetched it went out.
    assertEquals([first.cache, first.res.headers.get("age")], ["MISS", "33"]);
    assertEquals([second.cache, second.res.headers.get("age")], ["HIT", "33"]);
    // Fresh until its age reaches max-age (RFC 9111 §4.2.3), counted from the request.
    clock.advance(26_000);
    const hit = await get(g, "/api/aged");
    assertEquals([hit.cache, hit.res.headers.get("age")], ["HIT", "59"]);
    clock.advance(1_000);
    assertEquals((await get(g, "/api/aged")).cache, "MISS");
  });
});

Deno.test("cache: a client's validators are answered from an answer too large to store", async () => {
  const big = "x".repeat(10_000);
  const { up, count } = countingUpstream(() => new Response(big, { headers: { etag: '"v1"' } }));
  await withCache(up, "{ ttl_s: 60, max_body_bytes: 4096 }", async (g) => {
    const same = await get(g, "/api/big", { "if-none-match": '"v1"' });
    assertEquals([same.res.status, same.cache, same.body.length], [304, "MISS", 0]);
    assertEquals(same.res.headers.get("etag"), '"v1"');
    const other = await get(g, "/api/big", { "if-none-match": '"v0"' });
    assertEquals([other.res.status, other.body.length], [200, 10_000]);
    assertEquals(count("/api/big"), 2);
  });
});

Deno.test("cache: an answer whose body breaks off is a 502, never stored; a stale entry stands in", async () => {
  // Answers in full once, then promises 100000 bytes, sends 7 and drops the connection.
  const up = startFlaky((_req, n) => n === 1 ? { status: 200, body: "whole" } : "truncate");
  await withCache(
    up,
    "{ ttl_s: 10 }",
    async (g, clock) => {
      assertEquals((await get(g, "/old/x")).body, "whole");
      for (let i = 0; i < 2; i++) {
        const broken = await get(g, "/api/x");
        assertEquals([broken.res.status, broken.cache], [502, null]);
        assertEquals(JSON.parse(broken.body).error.code, "upstream_error");
      }
      assertEquals(up.received.filter((r) => r.path === "/api/x").length, 2);
      clock.advance(11_000);
      const stale = await get(g, "/old/x");
      assertEquals([stale.res.status, stale.cache, stale.body], [200, "STALE", "whole"]);
    },
    "  - { name: stale, match: { path: /old }, upstream: a, cache: { ttl_s: 10, stale_if_error_s: 60 } }",
  );
});

Deno.test("cache: a directive given twice counts once, as first given (RFC 9111 §4.2.1)", async () => {
  const { up, count } = countingUpstream((p, n) => {
    const headers = new Headers({ "content-type": "application/json" });
    // A framework's own header, then one a middleware added after it.
    const [first, second] = p === "/api/s"
      ? ["s-maxage=0", "s-maxage=60"]
      : ["max-age=0", "max-age=60"];
    headers.append("cache-control", first);
    headers.append("cache-control", second);
    return new Response(JSON.stringify({ n }), { headers });
  });
  await withCache(up, "{ ttl_s: 60 }", async (g) => {
    for (const p of ["/api/m", "/api/s"]) {
      assertEquals((await get(g, p)).cache, "MISS", p);
      assertEquals((await get(g, p)).cache, "MISS", p);
      assertEquals(count(p), 2, p);
    }
  });
});
