/**
 * Plan limits and quotas, applied by the caller's consumer plan on routes with
 * auth, in addition to the route's own limits.
 *
 * The consumer is set by the auth stage (issue 3). Until it is merged, this test
 * starts the gateway and runs a route's compiled chain with the consumer the
 * auth stage would have set; the request also carries the consumer's API key, so the
 * same test runs unchanged once auth resolves it from the key.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import type { Plan } from "../../lib/plan/plan.ts";
import { RequestContext } from "../../lib/core/context.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { parseTraceparent } from "../../lib/observe/trace.ts";
import { HeaderEdits } from "../../lib/proxy/header_edits.ts";

const CONSUMERS = {
  "key-free": { id: "team-free", plan: "free" },
  "key-free-2": { id: "team-free-2", plan: "free" },
  "key-gold": { id: "team-gold", plan: "gold" },
  "key-none": { id: "team-none", plan: null },
} as const;

function request(plan: Plan, clock: ManualClock, route: string, apiKey: keyof typeof CONSUMERS) {
  const compiled = plan.routes.find((r) => r.name === route)!;
  const path = compiled.config.match.path!;
  const req = new Request(`http://gw.test${path}`, { headers: { "x-api-key": apiKey } });
  const ctx = new RequestContext(
    req,
    "GET",
    path,
    "",
    "gw.test",
    "127.0.0.1",
    "127.0.0.1",
    { name: "public", tls: false },
    clock.now(),
    performance.now(),
    crypto.randomUUID(),
    parseTraceparent(null, null),
    new HeaderEdits(),
  );
  ctx.route = compiled;
  const c = CONSUMERS[apiKey];
  ctx.consumer = { id: c.id, plan: c.plan, scopes: new Set() };
  return Promise.resolve(compiled.handler(ctx)).then(async (res) => {
    await res.body?.cancel();
    return { status: res.status, limit: res.headers.get("ratelimit-limit"), ctx };
  });
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
  const plan = g.gw.plan;
  try {
    const statuses = async (route: string, key: keyof typeof CONSUMERS, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await request(plan, clock, route, key)).status);
      return out;
    };
    // free: 2 a minute by its plan, whichever route (the plan's counters are per consumer).
    assertEquals(await statuses("api", "key-free", 3), [200, 200, 429]);
    assertEquals(await statuses("other", "key-free", 1), [429]);
    // Another consumer on the same plan has its own counters.
    assertEquals(await statuses("api", "key-free-2", 2), [200, 200]);
    // gold: the route's own 5 a minute is the tighter one.
    assertEquals(await statuses("api", "key-gold", 6), [200, 200, 200, 200, 200, 429]);
    const gold = await request(plan, clock, "other", "key-gold");
    assertEquals([gold.status, gold.limit], [200, "100"]);
    // No plan: only the route's limit.
    assertEquals(await statuses("other", "key-none", 10), Array(10).fill(200));
    // The monthly quota of free: 3 in May, counted across routes, back on June 1st (UTC).
    clock.advance(60_000);
    assertEquals(await statuses("other", "key-free", 1), [200]);
    const quota = await request(plan, clock, "other", "key-free");
    assertEquals([quota.status, quota.ctx.errorCode], [429, "quota_exceeded"]);
    clock.set(Date.UTC(2026, 5, 1));
    assertEquals(await statuses("other", "key-free", 2), [200, 200]);
    // A route without auth gets no plan limits (and no policy at all).
    assertEquals(plan.routes.find((r) => r.name === "open")!.policies.includes("ratelimit"), false);
    assertEquals(plan.routes.find((r) => r.name === "other")!.policies.includes("ratelimit"), true);
  } finally {
    await g.close();
    await up.close();
  }
});
