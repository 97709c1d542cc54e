/** Rate limits and quotas through a real listener, with a fake clock so that counts are exact. */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { ConfigError } from "../../lib/config/issues.ts";
import { limitedConfig, routeR } from "./helpers.ts";

const T0 = Date.UTC(2026, 2, 10, 12, 0, 0);

async function withGateway(
  routes: string,
  fn: (g: TestGateway, up: TestServer, clock: ManualClock) => Promise<void>,
  extra = "",
): Promise<void> {
  const up = startUpstream(() => new Response("ok"));
  const clock = new ManualClock(T0);
  const g = await startGateway(baseConfig(limitedConfig(up.url, routes, extra)), { clock });
  try {
    await fn(g, up, clock);
  } finally {
    await g.close();
    await up.close();
  }
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${g.url()}${path}`, { headers });
  return { res, status: res.status, body: await res.text(), h: res.headers };
}

Deno.test("a limited route answers 429 in the common shape with Retry-After and RateLimit headers", async () => {
  await withGateway(
    routeR(`rate_limit: { algorithm: fixed_window, limit: 3, per: 1m, headers: ietf_and_x }`),
    async (g, up) => {
      for (const left of ["2", "1", "0"]) {
        const { status, h } = await get(g, "/r");
        assertEquals(status, 200);
        assertEquals(h.get("ratelimit-limit"), "3");
        assertEquals(h.get("ratelimit-remaining"), left);
        assertEquals(h.get("ratelimit-reset"), "60");
        assertEquals(h.get("x-ratelimit-reset"), String(T0 / 1000 + 60));
      }
      const res = await fetch(`${g.url()}/r`);
      const body = await assertError(res, 429, "rate_limited");
      assertMatch(body.error.message, /3 per 1m/);
      assertEquals(res.headers.get("retry-after"), "60");
      assertEquals(res.headers.get("ratelimit-limit"), "3");
      assertEquals(res.headers.get("ratelimit-remaining"), "0");
      assertEquals(res.headers.get("ratelimit-reset"), "60");
      assertEquals(res.headers.get("x-ratelimit-remaining"), "0");
      assertEquals(up.received.length, 3);
    },
  );
});

Deno.test("a refusal's RateLimit-Reset is the Retry-After instant, for buckets and sliding windows too", async () => {
  await withGateway(
    `  - name: bucket
    match: { path: /bucket }
    upstream: a
    rate_limit: { algorithm: token_bucket, rate: 1, per: 10s, burst: 3, headers: ietf_and_x }
  - name: sliding
    match: { path: /sliding }
    upstream: a
    rate_limit: { algorithm: sliding_window, limit: 2, per: 1m, headers: ietf_and_x }
`,
    async (g) => {
      // The full bucket is back in 30 s, but the next token comes in 10; the sliding window
      // lets the next request through in 90 s, though its count weighs for 120.
      for (const [path, passes, wait] of [["/bucket", 3, 10], ["/sliding", 2, 90]] as const) {
        for (let i = 0; i < passes; i++) assertEquals((await get(g, path)).status, 200, path);
        const res = await fetch(`${g.url()}${path}`);
        await assertError(res, 429, "rate_limited");
        const h = res.headers;
        assertEquals(h.get("retry-after"), String(wait), path);
        assertEquals(h.get("ratelimit-reset"), String(wait), path);
        assertEquals(h.get("x-ratelimit-reset"), String(T0 / 1000 + wait), path);
        assertEquals(h.get("ratelimit-remaining"), "0", path);
      }
    },
  );
});

Deno.test("several limits on one route all apply, and a refused request consumes from none", async () => {
  await withGateway(
    routeR(`
rate_limit:
  - { algorithm: token_bucket, rate: 2, per: 1s, burst: 2 }
  - { algorithm: fixed_window, limit: 5, per: 1h }
`),
    async (g, up, clock) => {
      const statuses: number[] = [];
      for (let second = 0; second < 4; second++) {
        for (let i = 0; i < 3; i++) statuses.push((await get(g, "/r")).status);
        clock.advance(1000);
      }
      // 2 a second by the bucket, until the hourly 5 are used up.
      assertEquals(statuses, [200, 200, 429, 200, 200, 429, 200, 429, 429, 429, 429, 429]);
      assertEquals(up.received.length, 5);
      // The response reports the tighter limit.
      clock.advance(3_600_000);
      const { h } = await get(g, "/r");
      assertEquals([h.get("ratelimit-limit"), h.get("ratelimit-remaining")], ["2", "1"]);
    },
  );
});

Deno.test("of limits with as few units left, the one that comes back last is reported", async () => {
  await withGateway(
    routeR(`
rate_limit:
  - { algorithm: token_bucket, rate: 1, per: 1s, burst: 1 }
  - { algorithm: fixed_window, limit: 1, per: 1h }
`),
    async (g, _up, clock) => {
      // Both are at 0; reporting the bucket's 1 s sent clients back into an hour of 429s.
      const { status, h } = await get(g, "/r");
      assertEquals(status, 200);
      assertEquals(
        [h.get("ratelimit-limit"), h.get("ratelimit-remaining"), h.get("ratelimit-reset")],
        ["1", "0", "3600"],
      );
      clock.advance(1000);
      const refused = await fetch(`${g.url()}/r`);
      await assertError(refused, 429, "rate_limited");
      assertEquals(refused.headers.get("retry-after"), "3599");
    },
  );
});

Deno.test("defaults apply to routes without their own limits and share one set of counters", async () => {
  await withGateway(
    `  - { name: one, match: { path: /one }, upstream: a }
  - { name: two, match: { path: /two }, upstream: a }
  - name: own
    match: { path: /own }
    upstream: a
    rate_limit: { algorithm: fixed_window, limit: 10, per: 1m }
`,
    async (g) => {
      assertEquals((await get(g, "/one")).status, 200);
      assertEquals((await get(g, "/two")).status, 200);
      assertEquals((await get(g, "/one")).status, 429);
      assertEquals((await get(g, "/two")).status, 429);
      assertEquals((await get(g, "/own")).status, 200);
    },
    "defaults:\n  rate_limit: { algorithm: sliding_window, limit: 2, per: 1m }\n",
  );
});

Deno.test("header keys count clients apart; a request without the header is counted by IP", async () => {
  await withGateway(
    `  - name: r
    match: { path: /r }
    upstream: a
    rate_limit: { algorithm: sliding_log, limit: 1, per: 1m, key: "header:X-Client" }
  - name: both
    match: { path: /both }
    upstream: a
    rate_limit: { algorithm: sliding_log, limit: 1, per: 1m, key: [ip, "header:X-Client"] }
`,
    async (g) => {
      assertEquals((await get(g, "/r", { "x-client": "a" })).status, 200);
      assertEquals((await get(g, "/r", { "x-client": "a" })).status, 429);
      assertEquals((await get(g, "/r", { "x-client": "b" })).status, 200);
      assertEquals((await get(g, "/r")).status, 200);
      assertEquals((await get(g, "/r")).status, 429);
      // A client cannot pose as the IP fallback key, and long values are hashed, not stored.
      assertEquals((await get(g, "/r", { "x-client": "~ip:127.0.0.1" })).status, 200);
      assertEquals((await get(g, "/r", { "x-client": "x".repeat(4000) })).status, 200);
      assertEquals((await get(g, "/r", { "x-client": "x".repeat(4000) })).status, 429);
      assertEquals((await get(g, "/both", { "x-client": "a" })).status, 200);
      assertEquals((await get(g, "/both", { "x-client": "a" })).status, 429);
      assertEquals((await get(g, "/both", { "x-client": "b" })).status, 200);
    },
  );
});

Deno.test("an empty header key part is counted by IP, as a missing one", async () => {
  await withGateway(
    `  - name: r
    match: { path: /r }
    upstream: a
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, key: "header:X-Tenant" }
  - name: both
    match: { path: /both }
    upstream: a
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, key: ["header:X-A", "header:X-B"] }
`,
    async (g) => {
      // Two clients (addresses from the trusted proxy's header), each with an empty header:
      // before, they shared one counter under the empty key, whatever their address.
      const from = (ip: string, h: Record<string, string>) => ({ "x-forwarded-for": ip, ...h });
      for (
        const [path, empty] of [["/r", { "x-tenant": "" }], ["/both", {
          "x-a": "",
          "x-b": "",
        }]] as const
      ) {
        assertEquals((await get(g, path, from("203.0.113.1", empty))).status, 200, path);
        assertEquals((await get(g, path, from("203.0.113.2", empty))).status, 200, path);
        assertEquals((await get(g, path, from("203.0.113.2", {}))).status, 429, path);
      }
    },
    "security: { trusted_proxies: [127.0.0.1] }\n",
  );
});

Deno.test("key ip/64 counts an IPv6 client by its /64 network, an IPv4 client by its address", async () => {
  await withGateway(
    `  - name: net
    match: { path: /net }
    upstream: a
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, key: ip/64 }
  - name: address
    match: { path: /address }
    upstream: a
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, key: ip }
`,
    async (g) => {
      // Client addresses from the trusted proxy's header.
      const from = async (path: string, ip: string) =>
        (await get(g, path, { "x-forwarded-for": ip })).status;
      assertEquals(await from("/net", "2001:db8:1:2::1"), 200);
      // Another address of the same /64, however written: one host choosing a new address.
      assertEquals(await from("/net", "2001:db8:1:2:a:b:c:d"), 429);
      assertEquals(await from("/net", "2001:0DB8:0001:0002::ffff"), 429);
      assertEquals(await from("/net", "2001:db8:1:3::1"), 200);
      assertEquals(await from("/net", "192.0.2.1"), 200);
      assertEquals(await from("/net", "192.0.2.2"), 200);
      assertEquals(await from("/net", "192.0.2.2"), 429);
      // `ip` keeps counting each address.
      assertEquals(await from("/address", "2001:db8:1:2::1"), 200);
      assertEquals(await from("/address", "2001:db8:1:2:a:b:c:d"), 200);
    },
    "security: { trusted_proxies: [127.0.0.1] }\n",
  );
});

Deno.test("a monthly quota ends on the calendar boundary in UTC", async () => {
  await withGateway(
    routeR(`quota: { requests: 2, per: month, key: ip }`),
    async (g, _up, clock) => {
      clock.set(Date.UTC(2026, 1, 28, 23, 59, 50));
      assertEquals((await get(g, "/r")).status, 200);
      const { h } = await get(g, "/r");
      assertEquals([h.get("ratelimit-limit"), h.get("ratelimit-remaining")], ["2", "0"]);
      const res = await fetch(`${g.url()}/r`);
      const body = await assertError(res, 429, "quota_exceeded");
      assertMatch(body.error.message, /2 per month/);
      assertEquals(res.headers.get("retry-after"), "10");
      clock.set(Date.UTC(2026, 2, 1));
      assertEquals((await get(g, "/r")).status, 200);
    },
  );
});

Deno.test("a daily quota and a rate limit apply together", async () => {
  await withGateway(
    routeR(`
rate_limit: { algorithm: token_bucket, rate: 1, per: 1s }
quota: { requests: 3, per: day, key: ip }
`),
    async (g, _up, clock) => {
      const statuses: string[] = [];
      for (let i = 0; i < 5; i++) {
        const first = await fetch(`${g.url()}/r`);
        await first.body?.cancel();
        const second = await fetch(`${g.url()}/r`);
        const code = second.status === 429 ? (await second.json()).error.code : second.status;
        statuses.push(`${first.status}/${code}`);
        clock.advance(1000);
      }
      assertEquals(statuses, [
        "200/rate_limited",
        "200/rate_limited",
        // Refused by both: the quota's refusal lasts longer, so it is the one reported.
        "200/quota_exceeded",
        "429/quota_exceeded",
        "429/quota_exceeded",
      ]);
    },
  );
});

Deno.test("a shadow limit observes without refusing", async () => {
  await withGateway(
    routeR(`rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, shadow: true }`),
    async (g, up) => {
      for (let i = 0; i < 3; i++) {
        const { status, h } = await get(g, "/r");
        assertEquals(status, 200);
        assertEquals(h.get("ratelimit-limit"), null);
      }
      assertEquals(up.received.length, 3);
    },
  );
});

Deno.test("a shadow shaping limit does not hold requests back", async () => {
  // Enforced, the second request would wait its slot: 10 s at 1 per 10s (the clock stands still).
  await withGateway(
    routeR(`rate_limit: { algorithm: leaky_bucket, mode: shape, rate: 1, per: 10s, shadow: true }`),
    async (g, up) => {
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const res = await fetch(`${g.url()}/r`, { signal: AbortSignal.timeout(5000) });
        await res.body?.cancel();
        assertEquals(res.status, 200);
        assertOk(performance.now() - t0 < 2000, `request ${i} held ${performance.now() - t0} ms`);
      }
      assertEquals(up.received.length, 3);
    },
  );
});

Deno.test("a shaped request whose slot is more than 24.8 days off is held, not forwarded at once", async () => {
  // At 1 per 30 days the second request's slot is 30 days off: past 2^31 ms, where a timer
  // fires at once (until 2026-12-08 it went to the upstream with no wait at all).
  await withGateway(
    routeR(`rate_limit: { algorithm: leaky_bucket, mode: shape, rate: 1, per: 30d, queue: 1 }`),
    async (g, up) => {
      assertEquals((await get(g, "/r")).status, 200);
      const client = new AbortController();
      const held = fetch(`${g.url()}/r`, { signal: client.signal }).then(
        (res) => res.status,
        () => "aborted",
      );
      await new Promise((r) => setTimeout(r, 300));
      assertEquals(up.received.length, 1);
      client.abort();
      assertEquals(await held, "aborted");
      assertEquals(up.received.length, 1);
    },
  );
});

Deno.test("headers: none keeps admitted responses clean but not refusals", async () => {
  await withGateway(
    routeR(`rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, headers: none }`),
    async (g) => {
      assertEquals((await get(g, "/r")).h.get("ratelimit-limit"), null);
      const refused = await get(g, "/r");
      assertEquals([refused.status, refused.h.get("ratelimit-limit")], [429, "1"]);
    },
  );
});

Deno.test("counters survive a reload for limits that still exist", async () => {
  const route = (per: string) =>
    routeR(`rate_limit: { algorithm: fixed_window, limit: 2, per: ${per} }`);
  await withGateway(route("1h"), async (g) => {
    assertEquals((await get(g, "/r")).status, 200);
    const text = await Deno.readTextFile(g.file);
    await Deno.writeTextFile(
      g.file,
      text + "  - { name: other, match: { path: /o }, upstream: a }\n",
    );
    assertEquals((await g.gw.reload()).ok, true);
    assertEquals((await get(g, "/r")).status, 200);
    assertEquals((await get(g, "/r")).status, 429);
    // A different window is a different limit: it starts afresh.
    await Deno.writeTextFile(g.file, text.replace("per: 1h", "per: 2h"));
    assertEquals((await g.gw.reload()).ok, true);
    assertEquals((await get(g, "/r")).status, 200);
  });
});

Deno.test("a reload that fails leaves the memory store's caps and counters as they were", async () => {
  await withGateway(
    routeR(`rate_limit: { algorithm: fixed_window, limit: 1, per: 1h, key: "header:X-Client" }`),
    async (g) => {
      const clients = ["a", "b", "c", "d", "e", "f"];
      for (const c of clients) assertEquals((await get(g, "/r", { "x-client": c })).status, 200);
      const text = await Deno.readTextFile(g.file);
      // A cap of 2 keys, in a config whose second route is refused when the plan is built.
      await Deno.writeTextFile(
        g.file,
        "store: { memory: { max_keys: 2 } }\n" + text +
          "  - { name: bad, match: { path: /b }, upstream: a, rate_limit: { algorithm: " +
          "fixed_window, limit: 1, per: 1h, key: consumer } }\n",
      );
      assertEquals((await g.gw.reload()).ok, false);
      // Until 2026-12-08 the rejected config's cap applied all the same: four clients' counters
      // were dropped and they were let through again.
      for (const c of clients) assertEquals((await get(g, "/r", { "x-client": c })).status, 429, c);
    },
  );
});

Deno.test("rate-limit config errors name the file, line and key", async () => {
  const cases: [string, RegExp][] = [
    [
      "rate_limit: { algorithm: leaky_bucket, mode: shape, rate: 5, per: 1s, burst: 3 }",
      /gateway\.yaml:10:\d+: routes\[0\]\.rate_limit\.burst: burst is for mode: police/,
    ],
    [
      "rate_limit: { algorithm: leaky_bucket, rate: 5, per: 1s }",
      /routes\[0\]\.rate_limit\.mode: expected one of "police", "shape", got nothing/,
    ],
    [
      "rate_limit: { algorithm: sliding_log, limit: 50000, per: 1h }",
      /routes\[0\]\.rate_limit\.limit: expected at most 10000/,
    ],
    [
      "rate_limit: { algorithm: token_bucket, rate: 5, per: 1s, burst: 2, cost: 3 }",
      /routes\[0\]\.rate_limit\.cost: expected a cost of at most 2/,
    ],
    [
      "rate_limit: { algorithm: fixed_window, limit: 5, per: 1s, key: consumer }",
      /gateway\.yaml:10:\d+: routes\[0\]\.rate_limit\[0\]\.key: key consumer needs auth/,
    ],
    [
      "rate_limit: { algorithm: fixed_window, limit: 5, per: 1s, key: [ip, header] }",
      /routes\[0\]\.rate_limit\.key\[1\]: expected consumer, ip, ip\/64, route or header:NAME/,
    ],
    [
      "quota: { requests: 5, per: week }",
      /routes\[0\]\.quota\.per: expected one of "day", "month", got the string "week"/,
    ],
  ];
  for (const [line, expected] of cases) {
    const yaml = baseConfig(`upstreams:
  a: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: r
    upstream: a
    ${line}
`);
    try {
      const g = await startGateway(yaml);
      await g.close();
      assertOk(false, `accepted: ${line}`);
    } catch (err) {
      assertOk(err instanceof ConfigError, String(err));
      assertMatch(err.message, expected, `${line}\n${err.message}`);
    }
  }
});

Deno.test("config/examples/ratelimit.yaml starts a gateway", async () => {
  const file = new URL("../../config/examples/ratelimit.yaml", import.meta.url).pathname;
  const text = (await Deno.readTextFile(file)).replace(/port: \d+/g, "port: 0");
  const g = await startGateway(text);
  try {
    const policies = Object.fromEntries(g.gw.plan.routes.map((r) => [r.name, r.policies]));
    for (const route of ["users", "search", "legacy", "public-docs"]) {
      assertOk(policies[route]!.includes("ratelimit"), route);
    }
  } finally {
    await g.close();
  }
});

Deno.test("a reload that changes a bucket's rate between whole and fractional starts it afresh", async () => {
  const route = (rate: string) =>
    routeR(`rate_limit: { algorithm: token_bucket, rate: ${rate}, per: 1s, burst: 20 }`);
  await withGateway(route("10"), async (g) => {
    for (let i = 0; i < 15; i++) assertEquals((await get(g, "/r")).status, 200);
    // 5 tokens left, held as 5,000 units of 1/1,000 token. At 10.5 per 1s a unit is 1/10,000
    // of a token: until 2026-12-07 the same state read as half a token, and refused.
    const text = await Deno.readTextFile(g.file);
    await Deno.writeTextFile(g.file, text.replace("rate: 10,", "rate: 10.5,"));
    assertEquals((await g.gw.reload()).ok, true);
    const after: number[] = [];
    for (let i = 0; i < 21; i++) after.push((await get(g, "/r")).status);
    assertEquals(after, [...new Array(20).fill(200), 429]);
  });
});
