/** Cached aggregation routes: the merged answer is as cacheable as its most restrictive part. */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";

/** Caching fields of each part, by the part's path. */
const PART_FIELDS: Record<string, Record<string, string>> = {
  "/personal": { "cache-control": "private, no-store" },
  "/cookie": { "set-cookie": "seen=1" },
  "/no-cache": { "cache-control": "no-cache" },
  "/vary-star": { "vary": "*" },
  "/short": { "cache-control": "public, max-age=10", "age": "5" },
  "/shared": { "cache-control": "max-age=100, s-maxage=8, must-revalidate" },
  "/language": { "vary": "Accept-Language, Accept-Encoding" },
};

/** Parts answer JSON naming the caller's cookie, so a personal answer shows whose it is. */
function startParts(): TestServer {
  return startUpstream((req, r) => {
    if (r.url === "/down") return new Response("down", { status: 503 });
    const body = { path: r.url, cookie: req.headers.get("cookie") };
    return Response.json(body, { headers: PART_FIELDS[r.url] ?? {} });
  });
}

function route(name: string, part: string, extra = ""): string {
  return `
  - name: ${name}
    match: { path: "/${name}/{id}" }
    cache: { ttl_s: 60${extra} }
    aggregate:
      calls:
        - { key: part, upstream: parts, path: "${part}" }
        - { key: plain, upstream: parts, path: "/plain/\${param.id}" }`;
}

async function withCachedAggregation(
  fn: (g: TestGateway, clock: ManualClock) => Promise<void>,
): Promise<void> {
  const parts = startParts();
  const clock = new ManualClock(1_700_000_000_000);
  // The personal route ignores the request's Cookie, which would bypass the cache: what must
  // keep its answer out is the part's own "private".
  const routes = Object.keys(PART_FIELDS).filter((p) => p !== "/language")
    .map((p) => route(p.slice(1), p, p === "/personal" ? ", ignore_cookies: true" : "")).join("");
  const g = await startGateway(
    baseConfig(`
upstreams:
  parts: { targets: [ { url: "${parts.url}" } ] }
routes:${routes}${route("degraded", "/down")}${route("plain", "/plain")}
${route("language", "/language", ", vary: [Accept-Language]")}
`),
    { clock },
  );
  try {
    await fn(g, clock);
  } finally {
    await g.close();
    await parts.close();
  }
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${g.url()}${path}`, { headers });
  return {
    cache: res.headers.get("x-cache"),
    cacheControl: res.headers.get("cache-control"),
    vary: res.headers.get("vary"),
    body: await res.json(),
  };
}

Deno.test("aggregate cache: one personal part keeps the merged answer out of the cache", async () => {
  await withCachedAggregation(async (g) => {
    const alice = await get(g, "/personal/1", { cookie: "session=A" });
    assertEquals([alice.cache, alice.body.part.cookie], ["MISS", "session=A"]);
    assertEquals(alice.cacheControl, "no-store, private");
    const anonymous = await get(g, "/personal/1");
    assertEquals([anonymous.cache, anonymous.body.part.cookie], ["MISS", null]);

    for (
      const [path, cacheControl, vary] of [
        ["/cookie/1", "private", null],
        ["/no-cache/1", "no-cache", null],
        ["/vary-star/1", null, "*"],
      ]
    ) {
      for (let i = 0; i < 2; i++) {
        const r = await get(g, path!);
        assertEquals([r.cache, r.cacheControl, r.vary], ["MISS", cacheControl, vary], path!);
      }
    }
  });
});

Deno.test("aggregate cache: an answer with a failed part is never stored", async () => {
  await withCachedAggregation(async (g) => {
    for (let i = 0; i < 2; i++) {
      const r = await get(g, "/degraded/1");
      assertEquals([r.cache, r.cacheControl], ["MISS", "no-store"]);
      assertEquals(r.body.errors.part.status, 503);
    }
  });
});

Deno.test("aggregate cache: the shortest part's freshness, less its Age, bounds the entry", async () => {
  await withCachedAggregation(async (g, clock) => {
    assertEquals((await get(g, "/short/1")).cacheControl, "max-age=5");
    const shared = await get(g, "/shared/1");
    assertEquals(shared.cacheControl, "must-revalidate, max-age=100, s-maxage=8");
    clock.advance(4_000);
    assertEquals((await get(g, "/short/1")).cache, "HIT");
    assertEquals((await get(g, "/shared/1")).cache, "HIT");
    clock.advance(2_000);
    assertEquals((await get(g, "/short/1")).cache, "MISS");
    assertEquals((await get(g, "/shared/1")).cache, "HIT");
    clock.advance(3_000);
    assertEquals((await get(g, "/shared/1")).cache, "MISS");
  });
});

Deno.test("aggregate cache: the parts' Vary is passed on, less headers the parts never see", async () => {
  await withCachedAggregation(async (g) => {
    // Accept-Encoding is never sent to a part, so the merged answer does not vary on it.
    const fr = await get(g, "/language/1", { "accept-language": "fr" });
    assertEquals([fr.cache, fr.vary], ["MISS", "accept-language"]);
    assertEquals((await get(g, "/language/1", { "accept-language": "fr" })).cache, "HIT");
    assertEquals((await get(g, "/language/1", { "accept-language": "de" })).cache, "MISS");
    // Parts with no caching fields: stored for the route's TTL, as before.
    const plain = await get(g, "/plain/1");
    assertEquals([plain.cache, plain.cacheControl, plain.vary], ["MISS", null, null]);
    assertEquals((await get(g, "/plain/1")).cache, "HIT");
  });
});
