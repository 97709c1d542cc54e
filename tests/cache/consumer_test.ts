/**
 * A cache on an authenticated route never serves one caller's response to
 * another: the caller is part of the key.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { compose } from "../../lib/core/pipeline.ts";
import { systemClock } from "../../lib/core/clock.ts";
import { cachePolicy } from "../../lib/cache/policy.ts";
import { compileCacheKey } from "../../lib/cache/key.ts";
import { MemoryCache } from "../../lib/cache/memory_store.ts";
import { PendingFills } from "../../lib/cache/fills.ts";
import { consumer, makeContext } from "../transform/request_context.ts";
import { sign } from "../auth/idp.ts";

/** An upstream that answers with the consumer the gateway forwarded (and counts calls). */
function whoAmI() {
  return startUpstream((req) =>
    Response.json({ for: req.headers.get("x-consumer-id") ?? req.headers.get("x-test-caller") })
  );
}

Deno.test("cache policy: entries are keyed by consumer and identity on authenticated routes", async () => {
  const up = whoAmI();
  const memory = new MemoryCache(1 << 20);
  const policy = cachePolicy({
    store: memory,
    key: compileCacheKey({ namespace: "r", normalizeQuery: true, vary: [], perCaller: true }),
    rules: { ttlMs: 60_000, statuses: new Set([200]), vary: new Set() },
    staleIfErrorMs: 0,
    maxBodyBytes: 1 << 20,
    authorizationReaders: new Set(),
    cookieBypasses: true,
    clock: systemClock,
    fills: new PendingFills(),
    invalidate: (ctx, next) => next(ctx),
  });
  // The real upstream stands for the rest of the chain; the caller travels in a header.
  const handler = compose([policy], async (ctx) => {
    const caller = ctx.consumer?.id ?? ctx.identity?.subject ?? "anonymous";
    const res = await fetch(`${up.url}${ctx.path}`, { headers: { "x-test-caller": caller } });
    return new Response(await res.text(), { headers: { "content-type": "application/json" } });
  });
  const call = async (who: ReturnType<typeof makeContext>) => {
    const res = await handler(who);
    return [res.headers.get("x-cache"), (await res.json()).for];
  };
  const url = "http://api.test/profile";
  const alice = () => makeContext(url, { consumer: consumer("alice"), now: Date.now() });
  const bob = () => makeContext(url, { consumer: consumer("bob"), now: Date.now() });
  const sub = (provider: string) => () =>
    makeContext(url, {
      identity: { provider, subject: "alice", scopes: new Set(), claims: {} },
      now: Date.now(),
    });
  try {
    assertEquals(await call(alice()), ["MISS", "alice"]);
    assertEquals(await call(bob()), ["MISS", "bob"]);
    assertEquals(await call(alice()), ["HIT", "alice"]);
    assertEquals(await call(bob()), ["HIT", "bob"]);
    // A token subject that happens to equal a consumer id is someone else.
    assertEquals(await call(sub("bearer")()), ["MISS", "alice"]);
    assertEquals(await call(sub("opaque")()), ["MISS", "alice"]);
    assertEquals(await call(makeContext(url, { now: Date.now() })), ["MISS", "anonymous"]);
    assertEquals(up.received.length, 5);
    assertEquals(memory.entries, 5);
  } finally {
    await up.close();
  }
});

const AUTH_CONFIG = (upstream: string) =>
  baseConfig(`
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: alice, api_keys: ["key-alice"] }
  - { id: bob, api_keys: ["key-bob"] }
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
  - name: me
    match: { path: /me }
    upstream: a
    auth: [keys]
    cache: { ttl_s: 60 }
    transform: { response: { headers: { set: { X-Served-For: "\${consumer.id}" } } } }
`);

Deno.test({
  name: "cache: through the gateway, one consumer never gets another's cached response",
  async fn() {
    const up = whoAmI();
    const g = await startGateway(AUTH_CONFIG(up.url));
    const as = async (key: string) => {
      const res = await fetch(`${g.url()}/me`, { headers: { "x-api-key": key } });
      const body = await res.json();
      assertEquals(res.headers.get("x-served-for"), body.for);
      return [res.headers.get("x-cache"), body.for];
    };
    try {
      assertEquals(await as("key-alice"), ["MISS", "alice"]);
      assertEquals(await as("key-bob"), ["MISS", "bob"]);
      assertEquals(await as("key-alice"), ["HIT", "alice"]);
      assertEquals(await as("key-bob"), ["HIT", "bob"]);
      const anon = await fetch(`${g.url()}/me`);
      await anon.body?.cancel();
      assertEquals([anon.status, anon.headers.get("x-cache")], [401, null]);
      assertEquals(up.received.length, 2);
    } finally {
      await g.close();
      await up.close();
    }
  },
});

const SECRET = "a-shared-secret-of-at-least-32-bytes!!";

/** Users of one consumer (a team that lists their subjects) on a cached route behind a JWT. */
const TEAM_CONFIG = (upstream: string) =>
  baseConfig(`
auth:
  bearer: { kind: jwt, secret: "\${SECRET}", algorithms: [HS256] }
consumers:
  - { id: team, subjects: [alice, bob] }
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: me, match: { path: /me }, upstream: a, auth: [bearer], cache: { ttl_s: 60 } }
`);

Deno.test("cache: two users of one consumer, or one user's tokens with other scopes, never share an entry", async () => {
  // The upstream personalises by what the gateway tells it: X-User-Id and X-User-Scopes.
  const up = startUpstream((req) =>
    Response.json({
      user: req.headers.get("x-user-id"),
      scopes: req.headers.get("x-user-scopes"),
    })
  );
  const g = await startGateway(TEAM_CONFIG(up.url), { env: { SECRET } });
  const key = new TextEncoder().encode(SECRET);
  const as = async (sub: string, scope: string) => {
    const token = await sign({ alg: "HS256", privateKey: key }, { sub, scope, exp: 4102444800 });
    const res = await fetch(`${g.url()}/me`, { headers: { authorization: `Bearer ${token}` } });
    return [res.headers.get("x-cache"), await res.json()];
  };
  try {
    assertEquals(await as("alice", "read"), ["MISS", { user: "alice", scopes: "read" }]);
    assertEquals(await as("bob", "read"), ["MISS", { user: "bob", scopes: "read" }]);
    assertEquals(await as("alice", "read admin"), [
      "MISS",
      { user: "alice", scopes: "read admin" },
    ]);
    assertEquals(await as("alice", "read"), ["HIT", { user: "alice", scopes: "read" }]);
    assertEquals(await as("bob", "read"), ["HIT", { user: "bob", scopes: "read" }]);
    assertEquals(up.received.length, 3);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("cache: an Authorization the route's auth did not check bypasses the cache", async () => {
  // The gateway knows the application by its key; the upstream knows the user by Authorization.
  const up = startUpstream((req) => Response.json({ user: req.headers.get("authorization") }));
  const g = await startGateway(AUTH_CONFIG(up.url));
  const as = async (authorization?: string) => {
    const headers: Record<string, string> = { "x-api-key": "key-alice" };
    if (authorization !== undefined) headers.authorization = authorization;
    const res = await fetch(`${g.url()}/me`, { headers });
    return [res.headers.get("x-cache"), (await res.json()).user];
  };
  try {
    assertEquals(await as("Basic dXNlcjE6cA=="), ["BYPASS", "Basic dXNlcjE6cA=="]);
    assertEquals(await as("Basic dXNlcjI6cA=="), ["BYPASS", "Basic dXNlcjI6cA=="]);
    // Nothing of theirs was stored: the application's own request fills its entry.
    assertEquals(await as(), ["MISS", null]);
    assertEquals(await as(), ["HIT", null]);
    assertEquals(up.received.length, 3);
  } finally {
    await g.close();
    await up.close();
  }
});
