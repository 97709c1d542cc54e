/**
 * The cache key holds the origin as the upstream is told it: the scheme and host a trusted proxy
 * forwarded, and the port of the authority the request was routed by.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawGet } from "../helpers/raw.ts";

/**
 * An upstream behind a TLS-terminating balancer: it sends plain-HTTP clients to https, and
 * builds its links from the forwarded host (both cacheable answers).
 */
function originAware() {
  return startUpstream((req) => {
    const host = req.headers.get("x-forwarded-host");
    if (req.headers.get("x-forwarded-proto") === "http") {
      return new Response(null, { status: 301, headers: { location: `https://${host}/api` } });
    }
    return Response.json({ self: `https://${host}/api` });
  });
}

async function withGateway(top: string, fn: (g: TestGateway) => Promise<void>): Promise<void> {
  const up = originAware();
  const g = await startGateway(baseConfig(`${top}
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: api, match: { path: /api }, upstream: a, cache: { ttl_s: 60 } }
`));
  try {
    await fn(g);
  } finally {
    await g.close();
    await up.close();
  }
}

const get = async (g: TestGateway, host: string, extra: string[] = []) => {
  const res = await rawGet(g.url(), "/api", host, extra);
  return [res.status, res.headers.get("x-cache"), res.headers.get("location") ?? res.body];
};

Deno.test("cache: behind a trusted proxy, the forwarded scheme and host are part of the key", async () => {
  await withGateway("security: { trusted_proxies: [127.0.0.1] }", async (g) => {
    const http = ["X-Forwarded-Proto: http"];
    const https = ["X-Forwarded-Proto: https"];
    assertEquals(await get(g, "api.test", http), [301, "MISS", "https://api.test/api"]);
    // The redirect stored for plain HTTP would send an https client back to itself forever.
    assertEquals(await get(g, "api.test", https), [200, "MISS", '{"self":"https://api.test/api"}']);
    assertEquals(await get(g, "api.test", https), [200, "HIT", '{"self":"https://api.test/api"}']);
    const other = [...https, "X-Forwarded-Host: shop.test"];
    assertEquals(await get(g, "api.test", other), [
      200,
      "MISS",
      '{"self":"https://shop.test/api"}',
    ]);
    assertEquals(await get(g, "api.test", http), [301, "HIT", "https://api.test/api"]);
  });
});

Deno.test("cache: the port the request named is part of the key", async () => {
  await withGateway("", async (g) => {
    // No trusted proxy: the upstream is told the listener's scheme and the Host as sent.
    const a = await get(g, "api.test:8080");
    assertEquals(a, [301, "MISS", "https://api.test:8080/api"]);
    assertEquals(await get(g, "api.test:9090"), [301, "MISS", "https://api.test:9090/api"]);
    assertEquals(await get(g, "api.test:8080"), [301, "HIT", "https://api.test:8080/api"]);
  });
});
