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

Deno.test("reload: a download running across a reload is logged to the access log it started on", async () => {
  const more = Promise.withResolvers<void>();
  const up = startUpstream(() => {
    const chunk = new Uint8Array(100_000).fill(97);
    return new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(chunk);
          await more.promise;
          c.enqueue(chunk);
          c.close();
        },
      }),
    );
  });
  const config = (log: string) =>
    baseConfig(`observe: { access_log: { path: ${log}, flush_ms: 20 } }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`);
  const g = await startGateway(config("before.log"));
  try {
    const res = await fetch(`${g.url()}/download`);
    const reader = res.body!.getReader();
    let bytes = (await reader.read()).value!.length;
    await Deno.writeTextFile(g.file, config("after.log"));
    const r = await g.gw.reload();
    assertOk(r.ok, r.errors.join("\n"));
    more.resolve();
    for (let c = await reader.read(); !c.done; c = await reader.read()) bytes += c.value.length;
    assertEquals(bytes, 200_000);
    await g.gw.deps.accessLogs.flushAll();
    // Until 2026-12-08 the plan was let go as its handler returned, before the body: it closed
    // the log the line was for, and the line was dropped.
    const before = await Deno.readTextFile(`${g.dir}/before.log`).catch(() => "");
    assertOk(before.includes('"path":"/download"'), `before.log: ${before}`);
  } finally {
    more.resolve();
    await g.close();
    await up.close();
  }
});
