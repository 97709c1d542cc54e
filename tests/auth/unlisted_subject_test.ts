/**
 * A subject no consumer lists is its own caller, namespaced by provider: a
 * token whose `sub` equals a consumer's id, or another provider's subject,
 * shares neither cache entries, rate-limit counters nor X-Consumer-Id with it.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { sign } from "./idp.ts";

const SECRET = "a-shared-secret-of-at-least-32-bytes!!";
const HS = { alg: "HS256", privateKey: new TextEncoder().encode(SECRET) };
const token = (sub: string) => sign(HS, { sub, exp: Math.floor(Date.now() / 1000) + 3600 });

const CONFIG = (upstream: string) =>
  baseConfig(`
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key }
  jwt: { kind: jwt, secret: "${SECRET}", algorithms: [HS256] }
  other: { kind: jwt, secret: "${SECRET}", algorithms: [HS256] }
consumers:
  - { id: alice, api_keys: ["alice-key-0123456789"] }
routes:
  - { name: cached, match: { path: /cached }, upstream: up, auth: [keys, jwt], cache: { ttl_s: 60 } }
  - { name: other, match: { path: /other }, upstream: up, auth: [other], cache: { ttl_s: 60 } }
  - name: limited
    match: { path: /limited }
    upstream: up
    auth: [keys, jwt]
    rate_limit: { algorithm: fixed_window, limit: 2, per: 1m, key: consumer }
`);

Deno.test("an unlisted subject equal to a consumer's id is a caller of its own", async (t) => {
  const up = startUpstream((req) =>
    Response.json({
      consumer: req.headers.get("x-consumer-id"),
      user: req.headers.get("x-user-id"),
    })
  );
  const g = await startGateway(CONFIG(up.url));
  const call = async (path: string, headers: Record<string, string>) => {
    const res = await fetch(`${g.url()}${path}`, { headers });
    return { status: res.status, cache: res.headers.get("x-cache"), body: await res.json() };
  };
  const key = { "x-api-key": "alice-key-0123456789" };
  const bearer = async (sub: string) => ({ authorization: `Bearer ${await token(sub)}` });
  try {
    await t.step(
      "the upstream gets <provider>:<subject> as consumer, the raw sub as user",
      async () => {
        const r = await call("/cached", await bearer("alice"));
        assertEquals(r.body, { consumer: "jwt:alice", user: "alice" });
      },
    );

    await t.step("the cache keeps the token's answer apart from the consumer's", async () => {
      const path = "/cached?apart";
      assertEquals((await call(path, key)).body.consumer, "alice");
      const viaToken = await call(path, await bearer("alice"));
      assertEquals([viaToken.cache, viaToken.body.consumer], ["MISS", "jwt:alice"]);
      const viaKey = await call(path, key);
      assertEquals([viaKey.cache, viaKey.body.consumer], ["HIT", "alice"]);
    });

    await t.step("two providers' equal subjects are two callers", async () => {
      const path = "?providers";
      const first = await call(`/cached${path}`, await bearer("carol"));
      const second = await call(`/other${path}`, await bearer("carol"));
      assertEquals([first.body.consumer, second.body.consumer], ["jwt:carol", "other:carol"]);
    });

    await t.step("the token does not use up the consumer's rate limit", async () => {
      const statuses = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await call("/limited", await bearer("alice"))).status);
      }
      assertEquals(statuses, [200, 200, 429]);
      assertEquals((await call("/limited", key)).status, 200);
    });
  } finally {
    await g.close();
    await up.close();
  }
});

async function configErrors(body: string): Promise<string> {
  try {
    const g = await startGateway(baseConfig(body));
    await g.close();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map(formatIssue).join("\n");
    throw e;
  }
  throw new Error("expected a configuration error");
}

Deno.test("ids an unlisted subject could take are refused at load", async () => {
  const jwt = `{ kind: jwt, secret: "${SECRET}", algorithms: [HS256] }`;
  assertMatch(
    await configErrors(`auth: { jwt: ${jwt} }\nconsumers: [ { id: "jwt:alice" } ]`),
    /consumers\[0\]\.id: ids starting with "jwt:" are reserved for subjects of provider "jwt"/,
  );
  assertMatch(
    await configErrors(`auth: { "jwt:a": ${jwt}, jwt: ${jwt} }`),
    /auth\.jwt:a: a provider name must not start with "jwt:"/,
  );
  // An API key always names a configured consumer: its name reserves nothing.
  const g = await startGateway(baseConfig(`auth: { keys: { kind: api_key } }
consumers: [ { id: "keys:alice" } ]`));
  await g.close();
});
