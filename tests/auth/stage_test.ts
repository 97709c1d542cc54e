/**
 * The auth stage's contract with later stages (rate limits read
 * `ctx.consumer.plan`, async jobs read `ctx.consumer.id`, metrics read
 * `ctx.authFailure`), and what it puts in a route's chain.
 */
import { assertEquals } from "../helpers/assert.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { BuildContext } from "../../lib/plan/build_context.ts";
import { authStage } from "../../lib/auth/stage.ts";
import { RequestContext } from "../../lib/core/context.ts";
import { incomingOf } from "../../lib/server/incoming.ts";
import { HeaderEdits } from "../../lib/proxy/header_edits.ts";
import { parseTraceparent } from "../../lib/observe/trace.ts";
import { silentLogger } from "../../lib/observe/logger.ts";
import { PoolRegistry } from "../../lib/proxy/pools.ts";
import { RedisConnections } from "../../lib/store/redis.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import type { RuntimeDeps } from "../../lib/plan/deps.ts";
import { ResilienceRegistry } from "../../lib/resilience/registry.ts";
import { CacheStores } from "../../lib/cache/stores.ts";
import { OpenUpgrades } from "../../lib/proxy/open_upgrades.ts";
import { MemoryLimiterStore } from "../../lib/store/memory_limiter.ts";
import { MetricsRegistry } from "../../lib/observe/metrics/registry.ts";
import { LogSinks } from "../../lib/observe/log_sink.ts";

async function build(yaml: string) {
  const loaded = await parseConfig(yaml, "/tmp/gateway.yaml", () => undefined);
  const deps: RuntimeDeps = {
    clock: new ManualClock(1_700_000_000_000),
    logger: silentLogger,
    pools: new PoolRegistry(),
    redis: new RedisConnections(silentLogger),
    resilience: new ResilienceRegistry(),
    caches: new CacheStores(),
    localLimiter: new MemoryLimiterStore(),
    upgrades: new OpenUpgrades(),
    metrics: new MetricsRegistry(),
    accessLogs: new LogSinks(silentLogger),
  };
  const b = new BuildContext(loaded.config, deps, loaded.source, "/tmp", new Map());
  const chains = [];
  for (const [i, r] of loaded.config.routes.entries()) chains.push(await authStage.build(r, i, b));
  return { chains, dispose: () => Promise.all(b.disposers.map((d) => d())) };
}

function context(headers: Record<string, string>): RequestContext {
  const req = new Request("http://gw.test/a", { headers });
  return new RequestContext(
    incomingOf(req),
    "GET",
    "/a",
    "",
    "gw.test",
    "127.0.0.1",
    "127.0.0.1",
    { name: "public", tls: false },
    1_700_000_000_000,
    0,
    "req-1",
    parseTraceparent(null, null),
    new HeaderEdits(),
  );
}

const UPSTREAM = `upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }`;

Deno.test("auth stage: sets ctx.consumer and ctx.identity, or ctx.authFailure", async () => {
  const { chains, dispose } = await build(`
${UPSTREAM}
auth: { keys: { kind: api_key } }
plans: { gold: {} }
consumers:
  - { id: team-a, plan: gold, scopes: [read], api_keys: ["key-a-0123456789"] }
routes:
  - { name: private, match: { path: /a }, upstream: up, auth: [keys] }
  - { name: public, match: { path: /b }, upstream: up }
`);
  try {
    assertEquals(chains.map((c) => c.map((p) => p.name)), [["auth"], ["strip_identity"]]);
    const policy = chains[0]![0]!.policy;
    const passed: RequestContext[] = [];
    const next = (ctx: RequestContext) => {
      passed.push(ctx);
      return new Response("ok");
    };
    const ctx = context({ "x-api-key": "key-a-0123456789" });
    assertEquals((await policy(ctx, next)).status, 200);
    assertEquals(passed.length, 1);
    assertEquals(ctx.consumer?.id, "team-a");
    assertEquals(ctx.consumer?.plan, "gold");
    assertEquals([...ctx.consumer!.scopes], ["read"]);
    assertEquals(ctx.identity?.provider, "keys");
    assertEquals(ctx.identity?.subject, "team-a");
    assertEquals(ctx.authFailure, null);

    const bad = context({ "x-api-key": "wrong" });
    assertEquals((await policy(bad, next)).status, 401);
    assertEquals(bad.authFailure, { provider: "keys", reason: "unknown_key" });
    assertEquals(bad.errorCode, "invalid_api_key");
    assertEquals(bad.consumer, null);
    assertEquals(passed.length, 1, "a refused request does not reach the next stage");
  } finally {
    await dispose();
  }
});

Deno.test("auth stage: a config without auth adds nothing to any chain", async () => {
  const { chains, dispose } = await build(`
${UPSTREAM}
routes:
  - { name: public, match: { path: /b }, upstream: up }
`);
  assertEquals(chains, [[]]);
  await dispose();
});
