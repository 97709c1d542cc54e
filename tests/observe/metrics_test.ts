/** /metrics through the admin listener after a known sequence of requests: exact values. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { closedPort, startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { parsePromText, type PromFamily, samplesOf, sampleValue } from "./prom_text.ts";
import { loadRedisClient } from "../../lib/store/redis.ts";
import { sign } from "../auth/idp.ts";

const BIG = 100_000;

async function scrape(admin: string): Promise<{ text: string; families: Map<string, PromFamily> }> {
  const res = await fetch(`${admin}/metrics`);
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, families: parsePromText(text) };
}

/**
 * Scrapes until `ready` holds (a streamed body is recorded just after its last byte left;
 * a health check runs on its own timer), for up to 10 s: a loaded machine is slow to both.
 */
async function scrapeWhen(
  admin: string,
  ready: (f: Map<string, PromFamily>) => boolean,
): Promise<Map<string, PromFamily>> {
  for (const end = performance.now() + 10_000; performance.now() < end;) {
    const { families } = await scrape(admin);
    if (ready(families)) return families;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("metrics did not settle");
}

Deno.test("metrics: exact counters, histograms and bytes after a known sequence", async () => {
  const up = startUpstream(async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/big") {
      let sent = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent >= BIG) return c.close();
            const n = Math.min(8192, BIG - sent);
            sent += n;
            c.enqueue(new Uint8Array(n).fill(120));
          },
        }),
      );
    }
    if (path === "/health") return new Response("sick", { status: 500 });
    const body = await req.text();
    return new Response(`${req.method} ${path} ${body}`);
  });
  const downPort = closedPort();
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
  down:
    targets: [ { url: "http://127.0.0.1:${downPort}" } ]
    circuit_breaker: { consecutive_failures: 2, open_s: 600 }
  sick:
    targets: [ { url: "${up.url}" } ]
    health_check: { path: /health, interval_s: 0.05, unhealthy_threshold: 1 }
routes:
  - { name: users, match: { path: /users, methods: [GET, POST] }, upstream: a }
  - { name: big, match: { path: /big }, upstream: a }
  - { name: fail, match: { path: /fail }, upstream: down }
`));
  try {
    let usersBytes = 0;
    const call = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${g.url()}${path}`, init);
      const body = new Uint8Array(await res.arrayBuffer());
      if (path.startsWith("/users") && res.status === 200) usersBytes += body.length;
      return { status: res.status, length: body.length };
    };
    for (let i = 0; i < 3; i++) assertEquals((await call("/users")).status, 200);
    assertEquals((await call("/users", { method: "POST", body: "hello world" })).status, 200);
    assertEquals((await call("/nope")).status, 404);
    assertEquals((await call("/users", { method: "DELETE" })).status, 405);
    assertEquals((await call("/users", { method: "BREW" })).status, 405);
    assertEquals((await call("/fail")).status, 502);
    assertEquals((await call("/fail")).status, 502);
    assertEquals(await call("/big"), { status: 200, length: BIG });

    const f = await scrapeWhen(
      g.admin,
      (f) => sampleValue(f, "gateway_requests_in_flight") === 0,
    );
    const requests = (route: string, method: string, status_class: string) =>
      sampleValue(f, "gateway_requests_total", { route, method, status_class });
    assertEquals(requests("users", "GET", "2xx"), 3);
    assertEquals(requests("users", "POST", "2xx"), 1);
    assertEquals(requests("unmatched", "GET", "4xx"), 1);
    assertEquals(requests("unmatched", "DELETE", "4xx"), 1);
    assertEquals(requests("unmatched", "OTHER", "4xx"), 1);
    assertEquals(requests("fail", "GET", "5xx"), 2);
    assertEquals(requests("big", "GET", "2xx"), 1);
    assertEquals(samplesOf(f, "gateway_requests_total").length, 7);
    // No consumer on these requests: the label is absent, not "undefined".
    assertOk(samplesOf(f, "gateway_requests_total").every((s) => !("consumer" in s.labels)));

    const errors = (route: string, code: string) =>
      sampleValue(f, "gateway_errors_total", { route, code });
    assertEquals(errors("unmatched", "route_not_found"), 1);
    assertEquals(errors("unmatched", "method_not_allowed"), 2);
    assertEquals(errors("fail", "bad_gateway"), 2);

    const durationCount = sampleValue(f, "gateway_request_duration_seconds_count", {
      route: "users",
      method: "GET",
      status_class: "2xx",
    });
    assertEquals(durationCount, 3);
    assertEquals(
      sampleValue(f, "gateway_request_duration_seconds_bucket", {
        route: "users",
        method: "GET",
        status_class: "2xx",
        le: "+Inf",
      }),
      3,
    );
    const les = samplesOf(f, "gateway_request_duration_seconds_bucket")
      .filter((s) => s.labels.route === "users" && s.labels.method === "GET")
      .map((s) => s.labels.le);
    assertEquals(les, [
      "0.0005",
      "0.001",
      "0.0025",
      "0.005",
      "0.01",
      "0.025",
      "0.05",
      "0.1",
      "0.25",
      "0.5",
      "1",
      "2.5",
      "5",
      "10",
      "+Inf",
    ]);
    assertEquals(
      sampleValue(f, "gateway_upstream_duration_seconds_count", { route: "users", upstream: "a" }),
      4,
    );
    assertEquals(
      sampleValue(f, "gateway_upstream_duration_seconds_count", { route: "big", upstream: "a" }),
      1,
    );
    // The failed upstream never answered: no upstream latency was observed for it.
    assertEquals(
      samplesOf(f, "gateway_upstream_duration_seconds_count").filter((s) =>
        s.labels.route === "fail"
      ).length,
      0,
    );
    assertEquals(sampleValue(f, "gateway_request_bytes_total", { route: "users" }), 11);
    assertEquals(sampleValue(f, "gateway_response_bytes_total", { route: "users" }), usersBytes);
    assertEquals(sampleValue(f, "gateway_response_bytes_total", { route: "big" }), BIG);

    const target = `${up.url}`;
    assertEquals(sampleValue(f, "gateway_upstream_target_healthy", { upstream: "a", target }), 1);
    assertEquals(
      sampleValue(f, "gateway_upstream_target_circuit_state", {
        upstream: "a",
        target,
        state: "closed",
      }),
      1,
    );
    assertEquals(
      sampleValue(f, "gateway_upstream_target_circuit_state", {
        upstream: "a",
        target,
        state: "open",
      }),
      0,
    );
    assertEquals(sampleValue(f, "gateway_config_info", { hash: g.gw.plan.hash }), 1);
    assertEquals(sampleValue(f, "gateway_config_reloads_total", { result: "success" }), 0);
    assertEquals(sampleValue(f, "gateway_config_reloads_total", { result: "failure" }), 0);
    assertEquals(sampleValue(f, "gateway_store_errors_total", { store: "redis" }), 0);

    // Target state is read live at scrape time: two failures opened the breaker of
    // `down`, and the failing health check took `sick` out of rotation.
    const down = `http://127.0.0.1:${downPort}`;
    const circuit = (state: string) =>
      sampleValue(f, "gateway_upstream_target_circuit_state", {
        upstream: "down",
        target: down,
        state,
      });
    assertEquals([circuit("closed"), circuit("open"), circuit("half_open")], [0, 1, 0]);
    assertEquals(sampleValue(f, "gateway_upstream_target_healthy", { upstream: "down" }), 1);
    const after = await scrapeWhen(
      g.admin,
      (f) => sampleValue(f, "gateway_upstream_target_healthy", { upstream: "sick" }) === 0,
    );
    assertEquals(
      sampleValue(after, "gateway_upstream_target_healthy", { upstream: "sick", target }),
      0,
    );
    // Scrapes of the admin listener are not requests of the public one.
    assertEquals(
      sampleValue(after, "gateway_requests_total", { route: "users", method: "GET" }),
      3,
    );
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: counters survive reloads; reload results and the config hash are exported", async () => {
  const up = startUpstream(() => new Response("ok"));
  const config = (name: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { config_watch: { enabled: false } }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: ${name}, match: { path: / }, upstream: a }
`;
  const g = await startGateway(config("first"));
  try {
    await (await fetch(`${g.url()}/x`)).body?.cancel();
    await Deno.writeTextFile(g.file, config("second"));
    assertEquals((await g.gw.reload()).ok, true);
    await (await fetch(`${g.url()}/x`)).body?.cancel();
    await Deno.writeTextFile(g.file, "routes: [ {");
    assertEquals((await g.gw.reload()).ok, false);

    const { families: f } = await scrape(g.admin);
    assertEquals(sampleValue(f, "gateway_requests_total", { route: "first" }), 1);
    assertEquals(sampleValue(f, "gateway_requests_total", { route: "second" }), 1);
    assertEquals(sampleValue(f, "gateway_config_reloads_total", { result: "success" }), 1);
    assertEquals(sampleValue(f, "gateway_config_reloads_total", { result: "failure" }), 1);
    assertEquals(sampleValue(f, "gateway_config_last_reload_successful"), 0);
    assertEquals(samplesOf(f, "gateway_config_info").length, 1);
    assertEquals(sampleValue(f, "gateway_config_info", { hash: g.gw.plan.hash }), 1);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: store errors follow the shared Redis connections", async () => {
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: / }, upstream: a }
`));
  try {
    const url = `redis://127.0.0.1:${closedPort()}`;
    // The config has no store.redis, so the plan build did not load the client library.
    await loadRedisClient();
    const client = g.gw.deps.redis.get({
      url,
      prefix: "gw:",
      on_error: "allow",
      timeout_ms: 100,
      connect_timeout_ms: 100,
    });
    await client.get("k").catch((e) => g.gw.deps.redis.failed(url, e));
    const { families: f } = await scrape(g.admin);
    const exported = sampleValue(f, "gateway_store_errors_total", { store: "redis" });
    assertOk(exported >= 1, `expected store errors, got ${exported}`);
    assertOk(exported <= g.gw.deps.redis.errors);
  } finally {
    await g.close();
  }
});

Deno.test("metrics: the exposition passes promtool's checker when promtool is installed", async () => {
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: / }, upstream: a }
`));
  try {
    await (await fetch(`${g.url()}/x`)).body?.cancel();
    await (await fetch(`${g.url()}/x`, { method: "PUT", body: "x" })).body?.cancel();
    const { text } = await scrape(g.admin);
    let child;
    try {
      child = new Deno.Command("promtool", {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch {
      console.log("promtool not installed (apt-get install prometheus): check skipped");
      return;
    }
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const out = await child.output();
    const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, report);
    assertEquals(report.trim(), "");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: cache hits and misses are counted, and so are the bytes a hit serves", async () => {
  const up = startUpstream(() =>
    new Response("cacheable body", { headers: { "cache-control": "max-age=60" } })
  );
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: cached, match: { path: /c }, upstream: a, cache: { ttl_s: 30 } }
`));
  try {
    const statuses: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${g.url()}/c`);
      assertEquals(await res.text(), "cacheable body");
      statuses.push(res.headers.get("x-cache"));
    }
    assertEquals(statuses, ["MISS", "HIT", "HIT"]);
    assertEquals(up.received.length, 1);
    const { families: f } = await scrape(g.admin);
    const lookups = (result: string) =>
      sampleValue(f, "gateway_cache_lookups_total", { route: "cached", result });
    assertEquals([lookups("miss"), lookups("hit")], [1, 2]);
    assertEquals(sampleValue(f, "gateway_response_bytes_total", { route: "cached" }), 3 * 14);
    // Only the miss went upstream.
    assertEquals(
      sampleValue(f, "gateway_upstream_duration_seconds_count", { route: "cached" }),
      1,
    );
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: rate-limit decisions by route, allowed and limited", async () => {
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: limited
    match: { path: /l }
    upstream: a
    rate_limit: { algorithm: fixed_window, limit: 3, per: 1h, key: ip }
`));
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${g.url()}/l`);
      await res.body?.cancel();
      statuses.push(res.status);
    }
    assertEquals(statuses, [200, 200, 200, 429, 429]);
    const { families: f } = await scrape(g.admin);
    const decisions = (decision: string) =>
      sampleValue(f, "gateway_ratelimit_decisions_total", { route: "limited", decision });
    assertEquals([decisions("allowed"), decisions("limited")], [3, 2]);
    assertEquals(up.received.length, 3);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: auth failures by provider and reason; requests by consumer, and without it", async () => {
  const up = startUpstream(() => new Response("ok"));
  const config = (consumerLabel: boolean) =>
    baseConfig(`
observe: { metrics: { consumer_label: ${consumerLabel} } }
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: mobile-app, api_keys: ["k-mobile"] }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: private, match: { path: /p }, upstream: a, auth: [keys] }
`);
  const g = await startGateway(config(true));
  try {
    const call = async (key?: string) => {
      const res = await fetch(`${g.url()}/p`, { headers: key ? { "x-api-key": key } : {} });
      await res.body?.cancel();
      return res.status;
    };
    assertEquals(await call(), 401);
    assertEquals(await call("wrong"), 401);
    assertEquals(await call("wrong-again"), 401);
    assertEquals(await call("k-mobile"), 200);
    assertEquals(await call("k-mobile"), 200);
    let { families: f } = await scrape(g.admin);
    assertEquals(
      sampleValue(f, "gateway_auth_failures_total", {
        provider: "keys",
        reason: "missing_credentials",
      }),
      1,
    );
    assertEquals(
      sampleValue(f, "gateway_auth_failures_total", { provider: "keys", reason: "unknown_key" }),
      2,
    );
    assertEquals(
      sampleValue(f, "gateway_requests_total", {
        route: "private",
        status_class: "2xx",
        consumer: "mobile-app",
      }),
      2,
    );
    assertEquals(
      sampleValue(f, "gateway_errors_total", { route: "private", code: "invalid_api_key" }),
      2,
    );

    // With consumer labels off (on reload), new requests are counted without the label.
    await Deno.writeTextFile(g.file, config(false));
    assertEquals((await g.gw.reload()).ok, true);
    assertEquals(await call("k-mobile"), 200);
    ({ families: f } = await scrape(g.admin));
    const ok = samplesOf(f, "gateway_requests_total").filter((s) =>
      s.labels.route === "private" && s.labels.status_class === "2xx"
    );
    assertEquals(ok.map((s) => [s.labels.consumer ?? null, s.value]), [
      ["mobile-app", 2],
      [null, 1],
    ]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: unlisted token subjects add no consumer series", async () => {
  const secret = "a-shared-secret-of-at-least-32-bytes!!";
  const hs = { alg: "HS256", privateKey: new TextEncoder().encode(secret) };
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(`
auth:
  jwt: { kind: jwt, secret: "${secret}", algorithms: [HS256] }
consumers:
  - { id: mobile-app, subjects: [client-42] }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: private, match: { path: /p }, upstream: a, auth: [jwt] }
`));
  try {
    const call = async (sub: string) => {
      const exp = Math.floor(Date.now() / 1000) + 3600;
      const authorization = `Bearer ${await sign(hs, { sub, exp })}`;
      const res = await fetch(`${g.url()}/p`, { headers: { authorization } });
      await res.body?.cancel();
      assertEquals(res.status, 200);
    };
    for (let i = 0; i < 20; i++) await call(`user-${crypto.randomUUID()}`);
    await call("client-42");
    const { families: f } = await scrape(g.admin);
    const ok = samplesOf(f, "gateway_requests_total").filter((s) => s.labels.route === "private");
    assertEquals(ok.map((s) => [s.labels.consumer ?? null, s.value]), [
      [null, 20],
      ["mobile-app", 1],
    ]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("metrics: a target listed twice in an upstream is one series per target gauge", async () => {
  const up = startUpstream(() => new Response("ok"));
  // Two entries that end up the same URL (as `${PRIMARY}` and `${SECONDARY}` defaulting alike do).
  const g = await startGateway(baseConfig(`
upstreams:
  a:
    targets: [ { url: "${up.url}" }, { url: "${up.url}" } ]
    circuit_breaker: { consecutive_failures: 5, open_s: 60 }
routes:
  - { name: r, match: { path: / }, upstream: a }
`));
  try {
    await (await fetch(`${g.url()}/`)).body?.cancel();
    // parsePromText refuses a series repeated: Prometheus drops the scrape's duplicates as errors.
    const { families: f } = await scrape(g.admin);
    const target = up.url;
    assertEquals(sampleValue(f, "gateway_upstream_target_healthy", { upstream: "a", target }), 1);
    assertEquals(
      sampleValue(f, "gateway_upstream_target_circuit_state", {
        upstream: "a",
        target,
        state: "closed",
      }),
      1,
    );
    assertEquals(samplesOf(f, "gateway_upstream_connections").length, 2);
  } finally {
    await g.close();
    await up.close();
  }
});
