/**
 * What a plan holds outside itself is let go once a reload has replaced it and
 * its last request has ended: many reloads leave no more open than one.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { redisCommand, startRedis } from "../helpers/redis.ts";
import { limitedConfig, routeR } from "../ratelimit/helpers.ts";

/** Clients connected to the Redis on `port`, not counting the connection asking. */
async function redisClients(port: number): Promise<number> {
  const info = await redisCommand(port, "INFO clients");
  const n = Number(/connected_clients:(\d+)/.exec(info)?.[1]);
  assertOk(Number.isInteger(n), info);
  return n - 1;
}

async function until(what: string, ok: () => Promise<boolean>, limitMs = 5_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!await ok()) {
    if (Date.now() > end) throw new Error(`not within ${limitMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("reload: the Redis connection of a store setting a reload changed is closed", async () => {
  const redis = await startRedis();
  const up = startUpstream(() => new Response("ok"));
  const config = (timeoutMs: number) =>
    baseConfig(limitedConfig(
      up.url,
      routeR("rate_limit: { algorithm: fixed_window, limit: 1000, per: 1h }"),
      `store: { kind: redis, redis: { url: "${redis.url}", timeout_ms: ${timeoutMs} } }`,
    ));
  const g = await startGateway(config(1000));
  try {
    const hit = async () => {
      const res = await fetch(`${g.url()}/r`);
      await res.body?.cancel();
      assertEquals(res.status, 200);
    };
    await hit();
    const atStart = await redisClients(redis.port);
    for (let i = 1; i <= 10; i++) {
      await Deno.writeTextFile(g.file, config(1000 + i));
      const r = await g.gw.reload();
      assertOk(r.ok, r.errors.join("\n"));
      await hit();
    }
    // Until 2026-12-08 each setting kept its own client for good: 11 connections here.
    await until(
      `${atStart} Redis connection(s) as at the start`,
      async () => await redisClients(redis.port) === atStart,
    );
  } finally {
    await g.close();
    await up.close();
    await redis.close();
  }
});
