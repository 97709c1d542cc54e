/**
 * Keys and revocations shared through a real redis-server by two gateway
 * instances: a change made through one instance's admin API is enforced by
 * the other at once (pub/sub, not the 30 s resync), changes missed while
 * disconnected are caught up, and a Redis outage neither fails requests nor
 * forgets known keys.
 */
import { Redis } from "ioredis";
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";
import { keyDigest } from "../../lib/auth/key_hash.ts";
import { sign } from "./idp.ts";

const HS_SECRET = "a-shared-secret-of-at-least-32-bytes!!";

Deno.test("redis credential store: keys and revocations reach every instance by pub/sub", async (t) => {
  const redis = await startRedis();
  const up = startUpstream();
  // A starting instance waits for its first load at most connect_timeout_ms (1 s by
  // default): generous here, where the suite's other tests share two cores (seen: a first
  // load over 1 s, and a new instance serving before it).
  const config = baseConfig(`
store: { kind: redis, redis: { url: "${redis.url}", prefix: "authtest:", connect_timeout_ms: 10000 } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  keys: { kind: api_key }
  bearer: { kind: jwt, secret: "${HS_SECRET}", algorithms: [HS256] }
consumers:
  - { id: team-a }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, auth: [keys] }
  - { name: jwt, match: { path: /jwt }, upstream: up, auth: [bearer] }
`);
  const gateways: TestGateway[] = [];
  const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  const status = async (g: TestGateway, path: string, headers: Record<string, string>) => {
    const res = await fetch(`${g.url()}${path}`, { headers });
    await res.body?.cancel();
    return res.status;
  };
  /**
   * Milliseconds until `g` answers `want`, polling every 10 ms for up to `limitMs`. Changes
   * travel by pub/sub (milliseconds); without it only the 30 s resync would bring them, so
   * 5 s still tells them apart, where 1 s failed on a stalled machine.
   */
  const until = async (
    g: TestGateway,
    path: string,
    headers: Record<string, string>,
    want: number,
    limitMs = 5000,
  ) => {
    const started = performance.now();
    while (await status(g, path, headers) !== want) {
      const spent = performance.now() - started;
      assertOk(spent < limitMs, `${path} did not answer ${want} within ${limitMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return performance.now() - started;
  };
  const admin = (g: TestGateway, method: string, path: string, body?: unknown) =>
    fetch(`${g.admin}${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}) });

  try {
    await raw.connect();
    gateways.push(await startGateway(config), await startGateway(config));
    const [a, b] = gateways as [TestGateway, TestGateway];
    const key = { "x-api-key": "shared-key-0001" };

    await t.step(
      "a key added on one instance is accepted by the other at once",
      async () => {
        assertEquals(await status(b, "/keys", key), 401);
        const res = await admin(a, "POST", "/keys", { consumer: "team-a", key: "shared-key-0001" });
        assertEquals(res.status, 201);
        await res.body?.cancel();
        assertEquals(await status(a, "/keys", key), 200, "at once on the instance that wrote it");
        const ms = await until(b, "/keys", key, 200);
        console.log(`key visible on the other instance after ${ms.toFixed(1)} ms`);
        assertEquals(await raw.hget("authtest:auth:keys", keyDigest("shared-key-0001")), "team-a");
      },
    );

    await t.step(
      "a key deleted on one instance is refused by the other at once",
      async () => {
        const res = await admin(b, "DELETE", "/keys/shared-key-0001");
        assertEquals(res.status, 204);
        await until(a, "/keys", key, 401);
      },
    );

    await t.step(
      "a jti revoked on one instance is refused by the other at once",
      async () => {
        const exp = Math.floor(Date.now() / 1000) + 600;
        const token = await sign(
          { alg: "HS256", privateKey: new TextEncoder().encode(HS_SECRET) },
          { sub: "team-a", exp, jti: "revoke-me" },
        );
        const bearer = { authorization: `Bearer ${token}` };
        assertEquals(await status(b, "/jwt", bearer), 200);
        const res = await admin(a, "POST", "/revocations", { jti: "revoke-me", exp });
        assertEquals(res.status, 201);
        await res.body?.cancel();
        await until(b, "/jwt", bearer, 401);
        const body = await assertError(
          await fetch(`${b.url()}/jwt`, { headers: bearer }),
          401,
          "token_revoked",
        );
        assertOk(body.error.request_id);
      },
    );

    await t.step("a new instance loads the current keys before it serves", async () => {
      const res = await admin(a, "POST", "/keys", { consumer: "team-a", key: "shared-key-0002" });
      await res.body?.cancel();
      const c = await startGateway(config);
      gateways.push(c);
      assertEquals(await status(c, "/keys", { "x-api-key": "shared-key-0002" }), 200);
    });

    await t.step(
      "changes missed while the subscription was down are caught up on reconnect",
      async () => {
        // Written behind the gateways' backs: no change event is published.
        await raw.hset("authtest:auth:keys", keyDigest("shared-key-0003"), "team-a");
        const quiet = { "x-api-key": "shared-key-0003" };
        assertEquals(await status(a, "/keys", quiet), 401);
        await raw.call("CLIENT", "KILL", "TYPE", "pubsub");
        await until(a, "/keys", quiet, 200, 5000);
        await until(b, "/keys", quiet, 200, 5000);
      },
    );

    await t.step("Redis down: known keys keep working, writes answer 503", async () => {
      raw.disconnect();
      await redis.stop();
      const known = { "x-api-key": "shared-key-0002" };
      assertEquals(await status(a, "/keys", known), 200);
      assertEquals(await status(b, "/keys", known), 200);
      await assertError(
        await admin(a, "POST", "/keys", { consumer: "team-a", key: "shared-key-0004" }),
        503,
        "store_unavailable",
      );
      await redis.start();
      // Back (empty: the test server keeps nothing on disk): writes work and spread again.
      const later = { "x-api-key": "shared-key-0005" };
      for (let i = 0; i < 100; i++) {
        const res = await admin(a, "POST", "/keys", { consumer: "team-a", key: "shared-key-0005" });
        await res.body?.cancel();
        if (res.status === 201) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await until(b, "/keys", later, 200, 5000);
    });
  } finally {
    raw.disconnect();
    for (const g of gateways) await g.close();
    await up.close();
    await redis.close();
  }
});

/**
 * A loopback TCP relay to `port` that holds the bytes of its first connection for
 * `delayMs`: the gateway's command connection is its first, so the subscriber's
 * connection, opened just after, is ready first.
 */
function slowFirstConnectionRelay(port: number, delayMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable, { preventClose: true });
    } catch {
      // Either side closed.
    }
  };
  const serving = (async () => {
    for await (const client of listener) {
      const first = accepted++ === 0;
      conns.add(client);
      (async () => {
        if (first) await new Promise((r) => setTimeout(r, delayMs));
        const server = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.add(server);
        await Promise.race([pipe(client, server), pipe(server, client)]);
        for (const c of [client, server]) {
          conns.delete(c);
          try {
            c.close();
          } catch {
            // Already closed.
          }
        }
      })();
    }
  })();
  return {
    url: `redis://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
      await serving;
    },
  };
}

Deno.test("redis credential store: a subscriber connected before the command connection still loads the keys before serving", async () => {
  const redis = await startRedis();
  const relay = slowFirstConnectionRelay(redis.port, 300);
  const up = startUpstream();
  const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  let g: TestGateway | undefined;
  try {
    await raw.connect();
    await raw.hset("slow:auth:keys", keyDigest("loaded-at-start-01"), "team-a");
    const started = performance.now();
    g = await startGateway(baseConfig(`
store: { kind: redis, redis: { url: "${relay.url}", prefix: "slow:", connect_timeout_ms: 5000 } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  keys: { kind: api_key }
consumers:
  - { id: team-a }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, auth: [keys] }
`));
    const startMs = performance.now() - started;
    const res = await fetch(`${g.url()}/keys`, { headers: { "x-api-key": "loaded-at-start-01" } });
    await res.body?.cancel();
    // Without waiting for the command connection, the first load failed at once and the
    // gateway served, after the whole connect timeout, without the key.
    assertEquals(
      res.status,
      200,
      `first answer ${res.status} after a ${startMs.toFixed(0)} ms start`,
    );
  } finally {
    raw.disconnect();
    await g?.close();
    await up.close();
    await relay.close();
    await redis.close();
  }
});
