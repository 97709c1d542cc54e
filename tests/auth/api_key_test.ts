/**
 * API keys through a real listener: header and query keys, plain and hashed
 * config keys, conflicts, scopes, credential stripping, several providers on
 * one route, and keys managed through the admin API (memory store).
 */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { keyDigest } from "../../lib/auth/key_hash.ts";
import { sign } from "./idp.ts";

const TEAM_A_KEY = "team-a-key-0123456789abcdef";
const TEAM_B_KEY = "team-b-key-fedcba9876543210";
const HS_SECRET = "a-shared-secret-of-at-least-32-bytes!!";

const config = (extraRoute = "") =>
  baseConfig(`
upstreams:
  up: { targets: [ { url: "UPSTREAM" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key, query: api_key }
  bearer: { kind: jwt, secret: "\${HS_SECRET}", algorithms: [HS256] }
plans: { free: {}, premium: {} }
consumers:
  - { id: team-a, plan: free, api_keys: ["\${TEAM_A_KEY}"], scopes: [read:users] }
  - { id: team-b, plan: premium, api_keys: ["sha256:${keyDigest(TEAM_B_KEY)}"],
      headers: { X-Tenant: b } }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, auth: [keys] }
  - { name: scoped, match: { path: /scoped }, upstream: up, auth: [keys], scopes: [write:users] }
  - { name: fwd, match: { path: /fwd }, upstream: up, auth: [keys], forward_credentials: true }
  - { name: either, match: { path: /either }, upstream: up, auth: [bearer, keys] }
${extraRoute}`);

Deno.test("api_key provider: keys in headers and queries, scopes, stripping, admin API", async (t) => {
  const up = startUpstream();
  const env = { TEAM_A_KEY, HS_SECRET };
  const g = await startGateway(config().replace("UPSTREAM", up.url), { env });
  const call = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${g.url()}${path}`, { headers });
    return { res, body: res.ok ? await res.json() : null };
  };
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${g.admin}${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}) });

  try {
    await t.step(
      "a key in the header authenticates its consumer; the key is not forwarded",
      async () => {
        const { res, body } = await call("/keys", { "x-api-key": TEAM_A_KEY });
        assertEquals(res.status, 200);
        assertEquals(body.headers["x-consumer-id"], "team-a");
        assertEquals(body.headers["x-user-scopes"], "read:users");
        assertEquals(body.headers["x-user-id"], undefined);
        assertEquals(body.headers["x-api-key"], undefined);
      },
    );

    await t.step("a key listed as sha256: in the config works, with consumer headers", async () => {
      const { body } = await call("/keys", { "x-api-key": TEAM_B_KEY, "x-tenant": "spoofed" });
      assertEquals(body.headers["x-consumer-id"], "team-b");
      assertEquals(body.headers["x-tenant"], "b");
    });

    await t.step("a key in the query works and is removed before forwarding", async () => {
      const { res, body } = await call(`/keys/items?page=2&api_key=${TEAM_A_KEY}&q=a+b`);
      assertEquals(res.status, 200);
      assertEquals(body.url, "/keys/items?page=2&q=a+b");
    });

    await t.step("header and query: the same key passes, different keys are a 400", async () => {
      const same = await call(`/keys?api_key=${TEAM_A_KEY}`, { "x-api-key": TEAM_A_KEY });
      assertEquals(same.res.status, 200);
      const { res } = await call(`/keys?api_key=${TEAM_B_KEY}`, { "x-api-key": TEAM_A_KEY });
      assertMatch(res.headers.get("www-authenticate")!, /error="invalid_request"/);
      await assertError(res, 400, "ambiguous_credentials");
      const twice = await call(`/keys?api_key=${TEAM_A_KEY}&api_key=${TEAM_B_KEY}`);
      await assertError(twice.res, 400, "ambiguous_credentials");
      // A percent-escaped name is the same parameter to every decoder: it was looked for
      // only as spelled, so it went upstream beside the header's key, or was not read at all.
      const escaped = await call(`/keys?api%5Fkey=${TEAM_B_KEY}&x=1`, { "x-api-key": TEAM_A_KEY });
      assertEquals(escaped.res.status, 400);
      await assertError(escaped.res, 400, "ambiguous_credentials");
      const alone = await call(`/keys/items?x=a%20b&api%5Fkey=${TEAM_A_KEY}&y=1`);
      assertEquals(alone.res.status, 200);
      assertEquals(alone.body.headers["x-consumer-id"], "team-a");
      assertEquals(alone.body.url, "/keys/items?x=a%20b&y=1");
    });

    await t.step(
      "an unknown key is 401 invalid_api_key; none at all is missing_credentials",
      async () => {
        const { res } = await call("/keys", { "x-api-key": "nope" });
        assertEquals(
          res.headers.get("www-authenticate"),
          'ApiKey realm="gateway", header="X-API-Key", error="invalid_token", ' +
            'error_description="The API key is not valid"',
        );
        await assertError(res, 401, "invalid_api_key");
        const none = await call("/keys");
        assertEquals(
          none.res.headers.get("www-authenticate"),
          'ApiKey realm="gateway", header="X-API-Key"',
        );
        await assertError(none.res, 401, "missing_credentials");
      },
    );

    await t.step("a consumer without the route's scope gets 403 insufficient_scope", async () => {
      const { res } = await call("/scoped", { "x-api-key": TEAM_A_KEY });
      assertMatch(
        res.headers.get("www-authenticate")!,
        /error="insufficient_scope", .*scope="write:users"/,
      );
      await assertError(res, 403, "insufficient_scope");
    });

    await t.step("forward_credentials keeps the key for the upstream", async () => {
      const { body } = await call("/fwd", { "x-api-key": TEAM_A_KEY });
      assertEquals(body.headers["x-api-key"], TEAM_A_KEY);
    });

    await t.step(
      "several providers: any one suffices; none challenges with every scheme",
      async () => {
        const token = await sign(
          { alg: "HS256", privateKey: new TextEncoder().encode(HS_SECRET) },
          {
            sub: "team-b",
            exp: Math.floor(Date.now() / 1000) + 60,
          },
        );
        const viaToken = await call("/either", { authorization: `Bearer ${token}` });
        // Its sub lists no consumer: an unlisted caller, namespaced by provider.
        assertEquals(viaToken.body.headers["x-consumer-id"], "bearer:team-b");
        assertEquals(viaToken.body.headers.authorization, undefined);
        const viaKey = await call("/either", {
          "x-api-key": TEAM_A_KEY,
          authorization: "Bearer bad",
        });
        assertEquals(viaKey.res.status, 200, "a bad token does not hide a good key");
        const none = await call("/either");
        assertEquals(
          none.res.headers.get("www-authenticate"),
          'Bearer realm="gateway", ApiKey realm="gateway", header="X-API-Key"',
        );
        await assertError(none.res, 401, "missing_credentials");
        const bad = await call("/either", { "x-api-key": "nope", authorization: "Bearer x.y.z" });
        await assertError(bad.res, 401, "invalid_token");
      },
    );

    await t.step("admin API: keys added and revoked without a reload", async () => {
      const add = await admin("POST", "/keys", { consumer: "team-a", key: "runtime-key-1" });
      assertEquals(add.status, 201);
      assertEquals(await add.json(), { consumer: "team-a", sha256: keyDigest("runtime-key-1") });
      assertEquals((await call("/keys", { "x-api-key": "runtime-key-1" })).res.status, 200);

      const gen = await admin("POST", "/keys", { consumer: "team-b" });
      const { key, sha256 } = await gen.json();
      assertEquals(gen.status, 201);
      assertOk(typeof key === "string" && key.length >= 43);
      assertEquals(
        (await call("/keys", { "x-api-key": key })).body.headers["x-consumer-id"],
        "team-b",
      );

      const list = await (await admin("GET", "/keys")).json();
      assertEquals(list.store, "memory");
      assertEquals(list.keys.length, 4);
      assertOk(!JSON.stringify(list).includes("runtime-key-1"), "keys are listed by digest only");

      assertEquals((await admin("DELETE", "/keys/runtime-key-1")).status, 204);
      await assertError(
        (await call("/keys", { "x-api-key": "runtime-key-1" })).res,
        401,
        "invalid_api_key",
      );
      assertEquals((await admin("DELETE", `/keys/sha256:${sha256}`)).status, 204);
      await assertError((await call("/keys", { "x-api-key": key })).res, 401, "invalid_api_key");

      await assertError(await admin("DELETE", "/keys/runtime-key-1"), 404, "key_not_found");
      await assertError(await admin("DELETE", `/keys/${TEAM_A_KEY}`), 400, "bad_request");
      await assertError(
        await admin("POST", "/keys", { consumer: "nobody", key: "k" }),
        400,
        "bad_request",
      );
      await assertError(
        await admin("POST", "/keys", { consumer: "team-b", key: TEAM_A_KEY }),
        400,
        "bad_request",
      );
      await assertError(await admin("POST", "/revocations", { jti: "x" }), 400, "bad_request");
    });

    await t.step("runtime keys survive a reload (memory store)", async () => {
      assertEquals(
        (await admin("POST", "/keys", { consumer: "team-a", key: "kept-key" })).status,
        201,
      );
      await Deno.writeTextFile(
        g.file,
        config("  - { name: extra, match: { path: /extra }, upstream: up }").replace(
          "UPSTREAM",
          up.url,
        ),
      );
      assertEquals((await g.gw.reload()).ok, true);
      assertEquals((await call("/keys", { "x-api-key": "kept-key" })).res.status, 200);
    });
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("api_key only: a client's identity headers never reach the upstream, on a public route either", async () => {
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: team-a, api_keys: ["${TEAM_A_KEY}"] }
routes:
  - { name: open, match: { path: /open }, upstream: up }
  - { name: keys, match: { path: /keys }, upstream: up, auth: [keys] }
`),
  );
  // API keys send no X-User-Id, but an upstream also behind a JWT route may trust one.
  const forged = { "x-user-id": "root", "x-consumer-id": "admin", "x-user-scopes": "admin:all" };
  try {
    const cases: [string, Record<string, string>][] = [
      ["/open", forged],
      ["/keys", { ...forged, "x-api-key": TEAM_A_KEY }],
    ];
    for (const [path, headers] of cases) {
      const res = await fetch(`${g.url()}${path}`, { headers });
      assertEquals(res.status, 200, path);
      const seen = (await res.json()).headers;
      assertEquals(
        [seen["x-user-id"], seen["x-consumer-id"], seen["x-user-scopes"]],
        path === "/open" ? [undefined, undefined, undefined] : [undefined, "team-a", undefined],
        path,
      );
    }
  } finally {
    await g.close();
    await up.close();
  }
});
