/** Aggregation routes through a real listener, fanning out to real upstreams. */
import { assertEquals, assertError, assertOk, assertRejects } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { ManualClock } from "../../lib/core/clock.ts";

interface Services {
  users: TestServer;
  orders: TestServer;
  slow: TestServer;
}

function startServices(): Services {
  return {
    users: startUpstream((_req, r) => Response.json({ user: r.url })),
    orders: startUpstream((_req, r) =>
      r.url.startsWith("/missing")
        ? Response.json({ error: "nope" }, { status: 404 })
        : r.url.startsWith("/html")
        ? new Response("<html>", { headers: { "content-type": "text/html" } })
        : Response.json({ orders: [1, 2], url: r.url })
    ),
    // Answers after 10 s, or not at all once the gateway gave up on it: the parts' deadlines
    // (100-150 ms) decide, by seconds, whatever a loaded machine adds.
    slow: startUpstream(async (req, r) => {
      await new Promise((res) => {
        const timer = setTimeout(res, 10_000);
        req.signal.addEventListener("abort", () => (clearTimeout(timer), res(null)));
      });
      if (req.signal.aborted) return new Response(null, { status: 499 });
      return Response.json({ late: r.url });
    }),
  };
}

async function withAggregation(
  fn: (g: TestGateway, s: Services) => Promise<void>,
): Promise<void> {
  const s = startServices();
  const g = await startGateway(baseConfig(`
upstreams:
  users: { targets: [ { url: "${s.users.url}" } ] }
  orders: { targets: [ { url: "${s.orders.url}" } ] }
  slow: { targets: [ { url: "${s.slow.url}" } ] }
routes:
  - name: dashboard
    match: { path: "/dashboard/{id}" }
    aggregate:
      calls:
        - { key: profile, upstream: users, path: "/users/\${param.id}" }
        - { key: orders, upstream: orders, path: "/orders?user=\${param.id}&page=\${query.page}" }
  - name: partial
    match: { path: "/partial/{id}" }
    aggregate:
      on_error: partial
      calls:
        - { key: profile, upstream: users, path: "/users/\${param.id}" }
        - { key: recommendations, upstream: slow, path: "/recs/\${param.id}", timeout_ms: 150 }
        - { key: missing, upstream: orders, path: "/missing" }
        - { key: html, upstream: orders, path: "/html" }
  - name: strict
    match: { path: "/strict/{id}" }
    aggregate:
      on_error: fail
      calls:
        - { key: profile, upstream: users, path: "/users/\${param.id}" }
        - { key: recommendations, upstream: slow, path: "/recs/\${param.id}", timeout_ms: 150 }
  - name: hopeless
    match: { path: /hopeless }
    aggregate:
      calls:
        - { key: a, upstream: slow, path: /a, timeout_ms: 100 }
        - { key: b, upstream: slow, path: /b, timeout_ms: 100 }
`));
  try {
    await fn(g, s);
  } finally {
    await g.close();
    await Promise.all([s.users.close(), s.orders.close(), s.slow.close()]);
  }
}

Deno.test("aggregate: calls run in parallel with path parameters and query, merged by key", async () => {
  await withAggregation(async (g, s) => {
    const res = await fetch(`${g.url()}/dashboard/a%20b?page=2`, {
      headers: { "accept-encoding": "gzip", "x-tenant": "acme" },
    });
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "application/json");
    assertEquals(await res.json(), {
      profile: { user: "/users/a%20b" },
      orders: { orders: [1, 2], url: "/orders?user=a%20b&page=2" },
    });
    const seen = s.orders.received[0]!.headers;
    // Client headers travel to every part, but not those that would change the answer's shape.
    assertEquals(seen.get("x-tenant"), "acme");
    assertEquals(seen.get("accept-encoding"), null);
    assertOk(seen.get("x-request-id"));
    assertEquals(seen.get("via"), "1.1 gateway");
  });
});

Deno.test("aggregate: a part that times out is reported under errors, the rest is returned", async () => {
  await withAggregation(async (g) => {
    const started = performance.now();
    const res = await fetch(`${g.url()}/partial/7`);
    const elapsed = performance.now() - started;
    assertEquals(res.status, 200);
    const body = await res.json();
    assertEquals(body.profile, { user: "/users/7" });
    assertEquals(body.recommendations, undefined);
    assertEquals(body.errors.recommendations.code, "upstream_timeout");
    assertEquals(body.errors.missing, {
      code: "upstream_error",
      message: "The upstream answered 404",
      status: 404,
    });
    assertEquals(body.errors.html.message, "The answer is not JSON");
    // The deadline, not the slow upstream (10 s), decided when to answer.
    assertOk(elapsed < 5_000, `answered after ${elapsed} ms`);
  });
});

Deno.test("aggregate: on_error fail answers with the failed part's error as soon as it fails", async () => {
  await withAggregation(async (g) => {
    const started = performance.now();
    const body = await assertError(await fetch(`${g.url()}/strict/7`), 504, "upstream_timeout");
    assertOk(performance.now() - started < 5_000);
    assertEquals(
      body.error.message,
      'The aggregated call "recommendations" failed: No complete answer within 150 ms',
    );
    assertEquals((body.error as unknown as { part: string }).part, "recommendations");
  });
});

Deno.test("aggregate: when every part fails the request fails; only GET and HEAD are served", async () => {
  await withAggregation(async (g) => {
    const body = await assertError(await fetch(`${g.url()}/hopeless`), 504, "upstream_timeout");
    assertEquals(Object.keys((body.error as unknown as { errors: object }).errors), ["a", "b"]);
    const post = await fetch(`${g.url()}/dashboard/1`, { method: "POST", body: "{}" });
    assertEquals(post.headers.get("allow"), "GET, HEAD");
    await assertError(post, 405, "method_not_allowed");
    const head = await fetch(`${g.url()}/dashboard/1`, { method: "HEAD" });
    assertEquals([head.status, await head.text()], [200, ""]);
  });
});

Deno.test("aggregate: configuration mistakes are positioned errors", async () => {
  const cases: [string, RegExp][] = [
    [
      `{ calls: [ { key: a, upstream: u, path: "/x/\${param.nope}" } ] }`,
      /routes\[0\]\.aggregate\.calls\[0\]\.path: \$\{param\.nope\} is not a parameter of the route's match path \(it has id\)/,
    ],
    [
      `{ calls: [ { key: a, upstream: u, path: "/x/\${bogus.thing}" } ] }`,
      /unknown template variable/,
    ],
    [`{ calls: [ { key: errors, upstream: u, path: /x } ] }`, /"errors" is reserved/],
    [
      `{ calls: [ { key: a, upstream: u, path: /x }, { key: a, upstream: u, path: /y } ] }`,
      /calls\[1\]\.key: duplicate key "a"/,
    ],
    [`{ calls: [ { key: a, upstream: nope, path: /x } ] }`, /unknown upstream "nope"/],
    [
      `{ calls: [ { key: a, upstream: u, path: "/x/../\${param.id}" } ] }`,
      /calls\[0\]\.path: expected a path without \. or \.\. segments/,
    ],
  ];
  for (const [aggregate, expected] of cases) {
    await assertRejects(
      () =>
        startGateway(baseConfig(`
upstreams: { u: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: "/r/{id}" }, aggregate: ${aggregate} }
`)),
      (e: Error) => expected.test(e.message),
    );
  }
});

Deno.test("aggregate: parts' numbers are merged as they were written", async () => {
  const part = '{"id":12345678901234567890,"price":1.10,"ratio":1e3,"plain":3.5}';
  const up = startUpstream(() =>
    new Response(part, { headers: { "content-type": "application/json" } })
  );
  const g = await startGateway(baseConfig(`
upstreams: { u: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: r
    match: { path: /r }
    aggregate: { calls: [ { key: a, upstream: u, path: /a }, { key: b, upstream: u, path: /b } ] }
`));
  try {
    const res = await fetch(`${g.url()}/r`);
    assertEquals(await res.text(), `{"a":${part},"b":${part}}`);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("aggregate: a substituted value cannot make a dot segment of a call's path", async () => {
  // A raw upstream: Deno.serve would resolve the dot segments before the test could see them.
  const up = startRawUpstream(async (x) => {
    await x.write(
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    );
  });
  const g = await startGateway(baseConfig(`
upstreams: { u: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: r
    match: { path: "/r/{id}" }
    aggregate:
      calls:
        - { key: user, upstream: u, path: "/users/\${query.user}/profile" }
        - { key: orders, upstream: u, path: "/orders/\${param.id}?user=\${query.user}" }
`));
  try {
    for (const user of ["..", ".", "%2e%2E"]) {
      const res = await fetch(`${g.url()}/r/7?user=${user}`);
      const body = await assertError(res, 400, "bad_request");
      assertEquals(
        body.error.message,
        'A value substituted into the path of the aggregated call "user" makes it a . or .. segment',
      );
    }
    assertEquals(up.paths, [], "no call was made");
    // Dots inside a segment, and a query's value, are values like any other.
    const ok = await fetch(`${g.url()}/r/7?user=a..b`);
    assertEquals(ok.status, 200);
    await ok.body?.cancel();
    assertEquals(up.paths.toSorted(), ["/orders/7?user=a..b", "/users/a..b/profile"]);
  } finally {
    await g.close();
    up.close();
  }
});

Deno.test("aggregate: a header's bytes are URL-encoded as they came, text as UTF-8", async () => {
  const up = startUpstream(() => Response.json({}));
  const g = await startGateway(baseConfig(`
upstreams: { u: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: r
    match: { path: /r }
    aggregate:
      calls:
        - { key: a, upstream: u, path: "/by-name/\${header.X-Name}?q=\${query.q}" }
`));
  try {
    // fetch sends each char of a header value as one byte: these are José's UTF-8 bytes.
    const res = await fetch(`${g.url()}/r?q=Jos%C3%A9`, { headers: { "x-name": "Jos\xc3\xa9" } });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    // Not /by-name/Jos%C3%83%C2%A9: each byte taken for a char and encoded again.
    assertEquals(up.received[0]!.url, "/by-name/Jos%C3%A9?q=Jos%C3%A9");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("aggregate: a part's target whose circuit has stayed open its open_s is called again", async () => {
  let failing = true;
  const up = startUpstream(() =>
    failing ? new Response("down", { status: 503 }) : Response.json({ ok: true })
  );
  const clock = new ManualClock(1_700_000_000_000);
  const g = await startGateway(
    baseConfig(`
upstreams:
  api:
    targets: [ { url: "${up.url}" } ]
    circuit_breaker: { consecutive_failures: 2, open_s: 5 }
routes:
  - { name: direct, match: { path: /direct }, upstream: api }
  - name: combined
    match: { path: /combined }
    aggregate:
      calls: [ { key: part, upstream: api, path: /part } ]
`),
    { clock },
  );
  try {
    for (let i = 0; i < 2; i++) await (await fetch(`${g.url()}/direct`)).body?.cancel();
    await assertError(await fetch(`${g.url()}/combined`), 503, "no_healthy_upstream");
    failing = false;
    clock.advance(5_000);
    const res = await fetch(`${g.url()}/combined`);
    assertEquals(res.status, 200, "the part half-opens the circuit, as a proxied request would");
    assertEquals(await res.json(), { part: { ok: true } });
  } finally {
    await g.close();
    await up.close();
  }
});
