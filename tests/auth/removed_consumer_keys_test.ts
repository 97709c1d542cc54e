/**
 * Runtime API keys (added with `POST /keys`) go with their consumer: a reload
 * that takes the consumer out of the config deletes them, so a later config that
 * reuses the id for someone else does not bring them back. With Redis every
 * instance deletes on its reload (idempotent: the first deletes), a sweep that
 * cannot reach Redis runs once it can, and a starting instance deletes nothing:
 * it may be a restart on an older config, which must not delete the keys of
 * consumers it never knew.
 */
import { Redis } from "ioredis";
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
import { keyDigest } from "../../lib/auth/key_hash.ts";

/** A config whose consumers are `consumers` (YAML flow items), on the given store. */
const config = (upstream: string, consumers: string[], store = "") =>
  baseConfig(`${store}
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
auth:
  keys: { kind: api_key }
consumers: [ ${consumers.join(", ")} ]
routes:
  - { name: keys, match: { path: /keys }, upstream: up, auth: [keys] }
`);

const admin = (g: TestGateway, method: string, path: string, body?: unknown) =>
  fetch(`${g.admin}${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}) });

async function addKey(g: TestGateway, consumer: string, key: string): Promise<void> {
  const res = await admin(g, "POST", "/keys", { consumer, key });
  assertEquals(res.status, 201, await res.text());
}

async function call(g: TestGateway, key: string): Promise<Response> {
  return await fetch(`${g.url()}/keys`, { headers: { "x-api-key": key } });
}

async function status(g: TestGateway, key: string): Promise<number> {
  const res = await call(g, key);
  await res.body?.cancel();
  return res.status;
}

/** Rewrites `g`'s config file and reloads it. */
async function reload(g: TestGateway, text: string): Promise<void> {
  await Deno.writeTextFile(g.file, text);
  const r = await g.gw.reload();
  assertEquals(r.ok, true, r.errors.join("\n"));
}

async function storeKeys(g: TestGateway): Promise<string[]> {
  const list = await (await admin(g, "GET", "/keys")).json();
  return list.keys.filter((k: { source: string }) => k.source === "store")
    .map((k: { consumer: string }) => k.consumer).sort();
}

const logger = (lines: string[]) => new JsonLogger("warn", (l) => lines.push(l));

/** `[keys, consumers]` of each deletion logged. */
const deletions = (lines: string[]) =>
  lines.map((l) => JSON.parse(l)).filter((l) => /deleted the runtime/.test(l.msg))
    .map((l) => [l.keys, l.consumers]);

/** Waits (10 ms polls, up to `limitMs`: the suite shares the machine) until `check` holds. */
async function until(what: string, check: () => Promise<boolean>, limitMs = 5000): Promise<void> {
  const started = performance.now();
  while (!await check()) {
    assertOk(performance.now() - started < limitMs, `${what} within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("memory store: a consumer removed by a reload takes its runtime keys along", async (t) => {
  const up = startUpstream((req) =>
    Response.json({
      consumer: req.headers.get("x-consumer-id"),
      tenant: req.headers.get("x-tenant"),
    })
  );
  const lines: string[] = [];
  const teamA = "{ id: team-a }";
  const teamX = (tenant: string) => `{ id: team-x, headers: { X-Tenant: ${tenant} } }`;
  const g = await startGateway(config(up.url, [teamA, teamX("old-team")]), {
    logger: logger(lines),
  });
  try {
    await addKey(g, "team-x", "team-x-runtime-key");
    await addKey(g, "team-a", "team-a-runtime-key");
    assertEquals(await (await call(g, "team-x-runtime-key")).json(), {
      consumer: "team-x",
      tenant: "old-team",
    });

    await t.step("a reload without the consumer deletes its keys, and only its", async () => {
      await reload(g, config(up.url, [teamA]));
      await assertError(await call(g, "team-x-runtime-key"), 401, "invalid_api_key");
      assertEquals(await storeKeys(g), ["team-a"]);
      assertEquals(await status(g, "team-a-runtime-key"), 200);
      assertEquals(deletions(lines), [[1, ["team-x"]]]);
    });

    await t.step("a later config reusing the id does not bring the keys back", async () => {
      await reload(g, config(up.url, [teamA, teamX("new-team")]));
      await assertError(await call(g, "team-x-runtime-key"), 401, "invalid_api_key");
      assertEquals(await (await admin(g, "DELETE", "/keys/team-x-runtime-key")).status, 404);
      // The new team's own keys work as ever.
      await addKey(g, "team-x", "new-team-x-key");
      assertEquals((await (await call(g, "new-team-x-key")).json()).tenant, "new-team");
    });
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("redis store: every instance sweeps the keys of consumers its config does not list", async (t) => {
  const redis = await startRedis();
  const up = startUpstream();
  const store =
    `store: { kind: redis, redis: { url: "${redis.url}", prefix: "sweep:", connect_timeout_ms: 10000 } }`;
  const all = ["{ id: team-a }", "{ id: team-x }", "{ id: team-y }", "{ id: team-z }"];
  const without = (...ids: string[]) =>
    config(up.url, all.filter((c) => !ids.some((id) => c.includes(`id: ${id} `))), store);
  const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  const gateways: TestGateway[] = [];
  const hget = (key: string) => raw.hget("sweep:auth:keys", keyDigest(key));
  try {
    await raw.connect();
    const logs = { a: [] as string[], b: [] as string[] };
    gateways.push(
      await startGateway(config(up.url, all, store), { logger: logger(logs.a) }),
      await startGateway(config(up.url, all, store), { logger: logger(logs.b) }),
    );
    const [a, b] = gateways as [TestGateway, TestGateway];

    await t.step(
      "the first instance to drop the consumer deletes; the others hear it",
      async () => {
        await addKey(a, "team-x", "x-key-0001");
        await addKey(a, "team-a", "a-key-0001");
        await until("b accepts x-key-0001", async () => await status(b, "x-key-0001") === 200);
        await reload(a, without("team-x"));
        await until("x-key-0001 is deleted", async () => await hget("x-key-0001") === null);
        assertEquals(await hget("a-key-0001"), "team-a");
        // Logged once the script's reply is back, which may be after Redis shows the deletion.
        await until("a logs the deletion", () => Promise.resolve(deletions(logs.a).length > 0));
        assertEquals(deletions(logs.a), [[1, ["team-x"]]]);
        // b still lists team-x, but its mirror heard the deletion.
        await until("b refuses x-key-0001", async () => await status(b, "x-key-0001") === 401);
        assertEquals(await storeKeys(b), ["team-a"]);
      },
    );

    await t.step(
      "the others, reloading the same config, find nothing left: idempotent",
      async () => {
        await reload(b, without("team-x"));
        await new Promise((r) => setTimeout(r, 100));
        assertEquals(await hget("a-key-0001"), "team-a");
        assertEquals(deletions(logs.b), []);
        assertEquals([await status(a, "a-key-0001"), await status(b, "a-key-0001")], [200, 200]);
      },
    );

    await t.step("a config that reuses the id does not bring the keys back", async () => {
      await reload(a, config(up.url, all, store));
      await reload(b, config(up.url, all, store));
      assertEquals([await status(a, "x-key-0001"), await status(b, "x-key-0001")], [401, 401]);
    });

    await t.step(
      "a starting instance, and its reloads, delete only what they removed",
      async () => {
        await addKey(a, "team-y", "y-key-0001");
        assertEquals(await hget("y-key-0001"), "team-y");
        // A restart on a config that never listed team-y (an older one, mid-rollout).
        const logs = [] as string[];
        const c = await startGateway(without("team-y"), { logger: logger(logs) });
        gateways.push(c);
        assertEquals(await status(a, "y-key-0001"), 200);
        // Its reload removes team-x, not team-y, which it never listed.
        await reload(c, without("team-y", "team-x"));
        await new Promise((r) => setTimeout(r, 100));
        assertEquals(await hget("y-key-0001"), "team-y");
        assertEquals([await status(a, "y-key-0001"), await status(c, "y-key-0001")], [200, 401]);
        assertEquals(deletions(logs), []);
        // The fleet's reload that removes team-y deletes its key.
        await reload(a, without("team-y"));
        await until("y-key-0001 is deleted", async () => await hget("y-key-0001") === null);
        await until("b refuses y-key-0001", async () => await status(b, "y-key-0001") === 401);
        await reload(a, config(up.url, all, store));
      },
    );

    await t.step("a sweep that cannot run is owed, and runs once the mirror reloads", async () => {
      await addKey(a, "team-z", "z-key-0001");
      // The sweep's script is refused; its HSET/PUBLISH writes are not.
      await raw.call("ACL", "SETUSER", "default", "-eval");
      try {
        await reload(a, without("team-z"));
        await until(
          "a reports the sweep it could not run",
          () => Promise.resolve(logs.a.some((l) => /cannot delete the runtime API keys/.test(l))),
        );
        assertEquals(await hget("z-key-0001"), "team-z");
      } finally {
        await raw.call("ACL", "SETUSER", "default", "+eval");
      }
      // The subscription reconnects, the mirror reloads whole, and the owed sweep runs.
      await raw.call("CLIENT", "KILL", "TYPE", "pubsub");
      await until("z-key-0001 is deleted", async () => await hget("z-key-0001") === null);
      await until("b refuses z-key-0001", async () => await status(b, "z-key-0001") === 401);
    });

    await t.step(
      "an owed sweep is forgotten for a consumer a later reload lists again",
      async () => {
        await reload(a, config(up.url, all, store));
        await addKey(a, "team-z", "z-key-0002");
        await raw.call("ACL", "SETUSER", "default", "-eval");
        const warned = logs.a.length;
        try {
          await reload(a, without("team-z"));
          await until(
            "a reports the sweep it could not run",
            () =>
              Promise.resolve(
                logs.a.slice(warned).some((l) => /cannot delete the runtime API keys/.test(l)),
              ),
          );
          await reload(a, config(up.url, all, store));
        } finally {
          await raw.call("ACL", "SETUSER", "default", "+eval");
        }
        await raw.call("CLIENT", "KILL", "TYPE", "pubsub");
        await until("a's mirror reloads", async () => await status(a, "z-key-0002") === 200);
        await new Promise((r) => setTimeout(r, 200));
        assertEquals(await hget("z-key-0002"), "team-z");
        assertEquals(await status(a, "z-key-0002"), 200);
      },
    );
  } finally {
    raw.disconnect();
    for (const g of gateways) await g.close();
    await up.close();
    await redis.close();
  }
});
