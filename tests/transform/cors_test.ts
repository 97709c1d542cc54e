/** CORS through a real listener: preflights never reach the upstream; origin traps refused. */
import { assertEquals, assertError, assertMatch, assertRejects } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";

async function withCors(
  fn: (g: TestGateway, upstreamCalls: () => number) => Promise<void>,
): Promise<void> {
  const up = startUpstream(() =>
    new Response("{}", {
      headers: {
        "content-type": "application/json",
        // The gateway owns CORS on the route: this must not leak through.
        "access-control-allow-origin": "*",
      },
    })
  );
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
cors: { origins: ["https://global.example.org"] }
routes:
  - name: catalog
    match: { path: /api/products }
    upstream: a
    cors:
      origins: ["https://app.example.com", "https://*.example.com", "http://localhost:3000"]
      methods: [GET, POST]
      headers: [Authorization, Content-Type]
      expose_headers: [X-Total-Count]
      credentials: true
      max_age_s: 600
  - name: open
    match: { path: /open }
    upstream: a
    cors: { origins: ["*"], headers: ["*"] }
  - name: other
    match: { path: /other }
    upstream: a
`));
  try {
    await fn(g, () => up.received.length);
  } finally {
    await g.close();
    await up.close();
  }
}

function preflight(g: TestGateway, path: string, origin: string, method = "POST", headers = "") {
  return fetch(`${g.url()}${path}`, {
    method: "OPTIONS",
    headers: {
      "origin": origin,
      "access-control-request-method": method,
      ...(headers ? { "access-control-request-headers": headers } : {}),
    },
  });
}

Deno.test("cors: a preflight is answered at the gateway without touching the upstream", async () => {
  await withCors(async (g, calls) => {
    const res = await preflight(
      g,
      "/api/products",
      "https://app.example.com",
      "POST",
      "content-type, authorization",
    );
    assertEquals(res.status, 204);
    await res.body?.cancel();
    const h = res.headers;
    assertEquals(h.get("access-control-allow-origin"), "https://app.example.com");
    assertEquals(h.get("access-control-allow-methods"), "GET, POST");
    assertEquals(h.get("access-control-allow-headers"), "Authorization, Content-Type");
    assertEquals(h.get("access-control-allow-credentials"), "true");
    assertEquals(h.get("access-control-max-age"), "600");
    assertMatch(h.get("vary") ?? "", /Origin/);
    assertEquals(calls(), 0);
  });
});

Deno.test("cors: wildcard subdomains match only real subdomains", async () => {
  await withCors(async (g, calls) => {
    for (const origin of ["https://shop.example.com", "https://a.b.example.com"]) {
      const res = await preflight(g, "/api/products", origin);
      await res.body?.cancel();
      assertEquals(res.status, 204, origin);
      assertEquals(res.headers.get("access-control-allow-origin"), origin);
    }
    const traps = [
      "https://evil-example.com",
      "https://example.com.evil.net",
      "https://example.com", // the bare domain is not a subdomain
      "http://shop.example.com", // another scheme
      "https://shop.example.com:8443", // another port
      "https://app.example.com.", // trailing dot
      "https://shop.example.com/", // not an origin
      "null",
      "https://localhost:3000",
    ];
    for (const origin of traps) {
      const res = await preflight(g, "/api/products", origin);
      const body = await assertError(res, 403, "forbidden");
      assertEquals(body.error.message, "The origin is not allowed by the CORS policy", origin);
      assertEquals(res.headers.get("access-control-allow-origin"), null, origin);
    }
    assertEquals(calls(), 0);
  });
});

Deno.test("cors: actual requests get the headers for allowed origins only, with Vary", async () => {
  await withCors(async (g, calls) => {
    const ok = await fetch(`${g.url()}/api/products`, {
      headers: { origin: "http://localhost:3000" },
    });
    await ok.body?.cancel();
    assertEquals(ok.headers.get("access-control-allow-origin"), "http://localhost:3000");
    assertEquals(ok.headers.get("access-control-allow-credentials"), "true");
    assertEquals(ok.headers.get("access-control-expose-headers"), "X-Total-Count");
    assertEquals(ok.headers.get("vary"), "Origin");

    for (const origin of ["null", "https://evil-example.com", null]) {
      const res = await fetch(`${g.url()}/api/products`, {
        headers: origin === null ? {} : { origin },
      });
      await res.body?.cancel();
      assertEquals(res.status, 200);
      // The upstream's `*` is replaced by the gateway's decision: nothing.
      assertEquals(res.headers.get("access-control-allow-origin"), null, String(origin));
      assertEquals(res.headers.get("vary"), "Origin");
    }
    assertEquals(calls(), 4);
  });
});

Deno.test("cors: methods and headers outside the policy are refused in the preflight", async () => {
  await withCors(async (g, calls) => {
    const del = await preflight(g, "/api/products", "https://app.example.com", "DELETE");
    assertEquals(
      (await assertError(del, 403, "forbidden")).error.message,
      "The method DELETE is not allowed by the CORS policy",
    );
    const put = await preflight(g, "/open", "https://app.example.com", "PUT");
    assertEquals(
      (await assertError(put, 403, "forbidden")).error.message,
      "The method PUT is not allowed by the CORS policy",
    );
    const hdr = await preflight(g, "/api/products", "https://app.example.com", "GET", "x-secret");
    assertEquals(
      (await assertError(hdr, 403, "forbidden")).error.message,
      "The header x-secret is not allowed by the CORS policy",
    );
    assertEquals(calls(), 0);
  });
});

Deno.test("cors: origin * answers * (no credentials) and reflects asked headers; global config applies", async () => {
  await withCors(async (g) => {
    const pre = await preflight(g, "/open", "null", "GET", "x-anything");
    await pre.body?.cancel();
    assertEquals(pre.status, 204);
    assertEquals(pre.headers.get("access-control-allow-origin"), "*");
    assertEquals(pre.headers.get("access-control-allow-headers"), "x-anything");
    assertEquals(pre.headers.get("access-control-allow-credentials"), null);
    const res = await fetch(`${g.url()}/open`, { headers: { origin: "https://any.site" } });
    await res.body?.cancel();
    assertEquals(res.headers.get("access-control-allow-origin"), "*");

    const global = await fetch(`${g.url()}/other`, {
      headers: { origin: "https://global.example.org" },
    });
    await global.body?.cancel();
    assertEquals(global.headers.get("access-control-allow-origin"), "https://global.example.org");
  });
});

Deno.test("cors: origin * is answered on every response, with or without Origin, so caches cannot mix them", async () => {
  await withCors(async (g) => {
    // A browser caches a navigation's answer (no Origin) and reuses it for fetch(): without
    // Access-Control-Allow-Origin there, that fetch fails (Fetch, "CORS protocol and HTTP caches").
    for (const headers of [{}, { origin: "https://any.site" }] as Record<string, string>[]) {
      const res = await fetch(`${g.url()}/open`, { headers });
      await res.body?.cancel();
      assertEquals(res.headers.get("access-control-allow-origin"), "*", JSON.stringify(headers));
      assertEquals(res.headers.get("vary"), null, JSON.stringify(headers));
    }
  });
});

Deno.test("cors: an OPTIONS shaped like a preflight is held to the methods of a route without CORS", async () => {
  const up = startUpstream();
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: items
    match: { path: /api/items, methods: [GET] }
    upstream: a
`));
  try {
    // It was routed as the GET it asked about, and forwarded upstream as an OPTIONS.
    const shaped = await preflight(g, "/api/items", "http://evil", "GET");
    await shaped.body?.cancel();
    assertEquals(shaped.status, 405);
    assertEquals(shaped.headers.get("allow"), "GET, HEAD");
    const plain = await fetch(`${g.url()}/api/items`, { method: "OPTIONS" });
    await plain.body?.cancel();
    assertEquals(plain.status, 405);
    assertEquals(up.received.length, 0);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("cors: unsafe origin lists are configuration errors", async () => {
  const cases: [string, RegExp][] = [
    [`{ origins: ["null"] }`, /routes\[0\]\.cors\.origins\[0\]: the null origin/],
    [
      `{ origins: ["*"], credentials: true }`,
      /credentials: true cannot be combined with origin \*/,
    ],
    [`{ origins: ["https://*.com"] }`, /a wildcard over a top-level domain/],
    [
      `{ origins: ["https://app.example.com"], credentials: true, expose_headers: ["*"] }`,
      /routes\[0\]\.cors\.expose_headers: .*\* exposes nothing to a request with credentials/,
    ],
    [`{ origins: ["https://app.example.com/"] }`, /expected \* or an origin/],
    [`{ origins: ["https://a.*.example.com"] }`, /expected \* or an origin/],
  ];
  for (const [cors, expected] of cases) {
    await assertRejects(
      () =>
        startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: / }, upstream: a, cors: ${cors} }
`)),
      (e: Error) => expected.test(e.message),
    );
  }
});
