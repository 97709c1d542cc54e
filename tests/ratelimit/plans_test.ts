/**
 * Plan limits and quotas, applied by the caller's consumer plan (set by auth
 * from its API key) on routes with auth, on top of the route's own limits.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";

async function request(g: TestGateway, path: string, apiKey: string) {
  const res = await fetch(`${g.url()}${path}`, { headers: { "x-api-key": apiKey } });
  const body = await res.text();
  const code = res.status === 429 ? JSON.parse(body).error.code : null;
  return { status: res.status, limit: res.headers.get("ratelimit-limit"), code };
}

Deno.test("plan limits apply by the consumer's plan, on top of the route's own", async () => {
  const up = startUpstream(() => new Response("ok"));
  const clock = new ManualClock(Date.UTC(2026, 4, 31, 23, 0));
  const g = await startGateway(
    baseConfig(`upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: team-free, plan: free, api_keys: [key-free] }
  - { id: team-free-2, plan: free, api_keys: [key-free-2] }
  - { id: team-gold, plan: gold, api_keys: [key-gold] }
  - { id: team-none, api_keys: [key-none] }
plans:
  free:
    rate_limit: { algorithm: token_bucket, rate: 2, per: 1m }
    quota: { requests: 3, per: month }
  gold:
    rate_limit: { algorithm: token_bucket, rate: 100, per: 1m }
routes:
  - name: api
    match: { path: /api }
    upstream: a
    auth: [keys]
    rate_limit: { algorithm: fixed_window, limit: 5, per: 1m, key: consumer }
  - name: other
    match: { path: /other }
    upstream: a
    auth: [keys]
  - name: open
    match: { path: /open }
    upstream: a
`),
    { clock },
  );

  try {
    const statuses = async (path: string, key: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await request(g, path, key)).status);
      return out;
    };
    // free: 2 a minute by its plan, whichever route (the plan's counters are per consumer).
    assertEquals(await statuses("/api", "key-free", 3), [200, 200, 429]);
    assertEquals(await statuses("/other", "key-free", 1), [429]);
    // Another consumer on the same plan has its own counters.
    assertEquals(await statuses("/api", "key-free-2", 2), [200, 200]);
    // gold: the route's own 5 a minute is the tighter one.
    assertEquals(await statuses("/api", "key-gold", 6), [200, 200, 200, 200, 200, 429]);
    const gold = await request(g, "/other", "key-gold");
    assertEquals([gold.status, gold.limit], [200, "100"]);
    // No plan: only the route's limit.
    assertEquals(await statuses("/other", "key-none", 10), Array(10).fill(200));
    // The monthly quota of free: 3 in May, counted across routes, back on June 1st (UTC).
    clock.advance(60_000);
    assertEquals(await statuses("/other", "key-free", 1), [200]);
    const quota = await request(g, "/other", "key-free");
    assertEquals([quota.status, quota.code], [429, "quota_exceeded"]);
    clock.set(Date.UTC(2026, 5, 1));
    assertEquals(await statuses("/other", "key-free", 2), [200, 200]);
    // A route without auth gets no plan limits (and no policy at all).
    assertEquals(
      g.gw.plan.routes.find((r) => r.name === "open")!.policies.includes("ratelimit"),
      false,
    );
    assertEquals(
      g.gw.plan.routes.find((r) => r.name === "other")!.policies.includes("ratelimit"),
      true,
    );
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("a key of several parts counts each combination apart, whatever separator a part holds", async () => {
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(
    baseConfig(`upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: acme, api_keys: [key-acme] }
  - { id: "acme|eu", api_keys: [key-acme-eu] }
routes:
  - name: api
    match: { path: /api }
    upstream: a
    auth: [keys]
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1h, key: [consumer, "header:X-Project"] }
`),
    { clock: new ManualClock(Date.UTC(2026, 4, 31, 23, 0)) },
  );
  try {
    const send = async (apiKey: string, project: string) => {
      const res = await fetch(`${g.url()}/api`, {
        headers: { "x-api-key": apiKey, "x-project": project },
      });
      await res.body?.cancel();
      return res.status;
    };
    // "acme|eu" + "web" and "acme" + "eu|web" were both counted under "acme|eu|web".
    assertEquals(await send("key-acme-eu", "web"), 200);
    assertEquals(await send("key-acme", "eu|web"), 200);
    assertEquals(await send("key-acme", "eu|web"), 429);
    assertEquals(await send("key-acme-eu", "web"), 429);
  } finally {
    await g.close();
    await up.close();
  }
});
