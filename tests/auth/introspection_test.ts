/**
 * OAuth 2.0 token introspection (RFC 7662) through a real listener against a
 * real introspection server: client authentication, positive caching for
 * min(cache_ttl, exp - now), negative caching, one call for 1,000 concurrent
 * requests with a new token, and an unreachable endpoint.
 */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { startIdp } from "./idp.ts";

Deno.test("oauth2_introspection provider: caching, coalescing, client auth, outage", async (t) => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const nowS = () => Math.floor(clock.now() / 1000);
  const idp = startIdp();
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(`
upstreams:
  # The burst step's 1,000 requests go on at once, each on a new connection to the test
  # upstream: connects beyond its accept queue are retried by TCP after 1 s, 3 s... and a
  # stalled machine took them past the 5 s default (504).
  up: { targets: [ { url: "${up.url}" } ], timeout: { connect_ms: 60000 } }
auth:
  opaque:
    kind: oauth2_introspection
    url: "${idp.introspectUrl}"
    client_id: gateway
    client_secret: "\${SECRET}"
    cache_ttl_s: 30
    negative_cache_ttl_s: 5
    # The burst step holds the one call until 1,000 requests wait on it: the default 2 s
    # timeout ended it first when a loaded machine took longer to send them (all 503).
    timeout_ms: 60000
  opaque_post:
    kind: oauth2_introspection
    url: "${idp.introspectUrl}"
    client_id: gateway
    client_secret: plain
    client_auth: post
    audience: api.test
consumers:
  - { id: billing, subjects: [client-9] }
routes:
  - { name: opaque, match: { path: /opaque }, upstream: up, auth: [opaque], scopes: [read] }
  - { name: post, match: { path: /post }, upstream: up, auth: [opaque_post] }
`),
    { clock, env: { SECRET: "s3cr:et two" } },
  );
  const call = (path: string, token: string) =>
    fetch(`${g.url()}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const ok = async (path: string, token: string) => {
    const res = await call(path, token);
    const text = await res.text();
    assertEquals(res.status, 200, text);
    return JSON.parse(text);
  };
  const active = (sub: string, extra: Record<string, unknown> = {}) => ({
    active: true,
    sub,
    scope: "read write",
    exp: nowS() + 3600,
    ...extra,
  });

  try {
    await t.step("an active token passes; the gateway authenticates as a client", async () => {
      idp.tokens.set("tok-1", active("client-9", { client_id: "billing-app" }));
      const body = await ok("/opaque", "tok-1");
      assertEquals(body.headers["x-consumer-id"], "billing");
      assertEquals(body.headers["x-user-id"], "client-9");
      assertEquals(body.headers["x-user-scopes"], "read write");
      assertEquals(body.headers.authorization, undefined);
      const sent = idp.introspections.at(-1)!;
      assertEquals(sent.authorization, `Basic ${btoa("gateway:s3cr%3Aet+two")}`);
      const form = new URLSearchParams(sent.body);
      assertEquals(form.get("token"), "tok-1");
      assertEquals(form.get("token_type_hint"), "access_token");
    });

    await t.step("client_secret_post sends the client in the form; aud is checked", async () => {
      idp.tokens.set("tok-aud", active("client-9", { aud: ["api.test", "other"] }));
      idp.tokens.set("tok-other-aud", active("client-9", { aud: "other" }));
      await ok("/post", "tok-aud");
      const sent = idp.introspections.at(-1)!;
      assertEquals(sent.authorization, null);
      const form = new URLSearchParams(sent.body);
      assertEquals([form.get("client_id"), form.get("client_secret")], ["gateway", "plain"]);
      await assertError(await call("/post", "tok-other-aud"), 401, "invalid_audience");
    });

    await t.step("an active answer is reused for cache_ttl_s", async () => {
      const before = idp.hits.introspect;
      await ok("/opaque", "tok-1");
      clock.advance(29_000);
      await ok("/opaque", "tok-1");
      assertEquals(idp.hits.introspect, before);
      clock.advance(2_000);
      await ok("/opaque", "tok-1");
      assertEquals(idp.hits.introspect, before + 1);
    });

    await t.step("...but never past the token's exp", async () => {
      idp.tokens.set("tok-short", active("client-9", { exp: nowS() + 10 }));
      const before = idp.hits.introspect;
      await ok("/opaque", "tok-short");
      clock.advance(9_000);
      await ok("/opaque", "tok-short");
      assertEquals(idp.hits.introspect, before + 1);
      clock.advance(2_000);
      await assertError(await call("/opaque", "tok-short"), 401, "token_inactive");
      assertEquals(idp.hits.introspect, before + 2);
    });

    await t.step("inactive answers are cached for negative_cache_ttl_s", async () => {
      const before = idp.hits.introspect;
      for (let i = 0; i < 3; i++) {
        const res = await call("/opaque", "unknown-token");
        assertEquals(res.headers.get("www-authenticate")?.includes('error="invalid_token"'), true);
        await assertError(res, 401, "token_inactive");
      }
      assertEquals(idp.hits.introspect, before + 1);
      clock.advance(6_000);
      await assertError(await call("/opaque", "unknown-token"), 401, "token_inactive");
      assertEquals(idp.hits.introspect, before + 2);
    });

    await t.step("a token without a required scope is 403", async () => {
      idp.tokens.set("tok-ro", active("client-9", { scope: "write" }));
      await assertError(await call("/opaque", "tok-ro"), 403, "insufficient_scope");
    });

    await t.step(
      "1,000 concurrent requests with one new token make one introspection call",
      async () => {
        idp.tokens.set("tok-burst", active("client-9"));
        const before = idp.hits.introspect;
        let release!: () => void;
        idp.hold = new Promise((r) => (release = r));
        const responses = Array.from({ length: 1000 }, () => call("/opaque", "tok-burst"));
        try {
          // All of them wait on the gateway before the one call is answered.
          const end = performance.now() + 50_000;
          while (performance.now() < end && g.gw.plan.inFlight < 1000) {
            await new Promise((r) => setTimeout(r, 25));
          }
          assertEquals(g.gw.plan.inFlight, 1000);
        } finally {
          // Released even when the step fails, or every later introspection would wait.
          release();
          idp.hold = null;
        }
        const statuses = await Promise.all(responses.map(async (p) => {
          const res = await p;
          await res.body?.cancel();
          return res.status;
        }));
        assertOk(statuses.every((s) => s === 200), `statuses: ${[...new Set(statuses)]}`);
        assertEquals(idp.hits.introspect, before + 1);
      },
    );

    await t.step("a refresh token is refused; scopes with spaces are dropped", async () => {
      for (
        const [token, claims] of [
          ["tok-refresh-1", { token_type: "refresh_token" }],
          ["tok-refresh-2", { token_use: "refresh_token" }],
          ["tok-refresh-3", { token_type: "Refresh" }],
        ] as const
      ) {
        idp.tokens.set(token, active("client-9", claims));
        await assertError(await call("/opaque", token), 401, "invalid_token");
      }
      idp.tokens.set("tok-bearer", active("client-9", { token_type: "Bearer" }));
      assertEquals((await ok("/opaque", "tok-bearer")).headers["x-consumer-id"], "billing");
      // A list element "read admin" would have passed as the two scopes read and admin.
      idp.tokens.set("tok-scp", active("client-9", { scope: undefined, scp: ["read", "x admin"] }));
      assertEquals((await ok("/opaque", "tok-scp")).headers["x-user-scopes"], "read");
      // The same in a space-separated scope: a tab or another space-like character is no
      // separator here, but is one to an upstream that splits X-User-Scopes on whitespace.
      idp.tokens.set("tok-tab", active("client-9", { scope: "read\tadmin read\u2003root read" }));
      assertEquals((await ok("/opaque", "tok-tab")).headers["x-user-scopes"], "read");
    });

    await t.step("an exp that is not a number bounds nothing: the answer is not kept", async () => {
      idp.tokens.set("tok-text-exp", active("client-9", { exp: String(nowS() + 3600) }));
      const before = idp.hits.introspect;
      await ok("/opaque", "tok-text-exp");
      await ok("/opaque", "tok-text-exp");
      assertEquals(idp.hits.introspect, before + 2);
    });

    await t.step(
      "two Authorization fields are a 400, and nothing is sent to the endpoint",
      async () => {
        idp.tokens.set("tok-two", active("client-9"));
        const before = idp.hits.introspect;
        const headers = new Headers([["authorization", "Bearer tok-two"], [
          "authorization",
          "Bearer tok-1",
        ]]);
        const res = await fetch(`${g.url()}/opaque`, { headers });
        assertEquals(
          res.headers.get("www-authenticate")?.includes('error="invalid_request"'),
          true,
        );
        await assertError(res, 400, "ambiguous_credentials");
        assertEquals(idp.hits.introspect, before);
      },
    );

    await t.step("an unreachable endpoint is a 503, not a cached refusal", async () => {
      idp.tokens.set("tok-later", active("client-9"));
      idp.down = true;
      const res = await call("/opaque", "tok-later");
      assertEquals(res.headers.get("www-authenticate"), null);
      await assertError(res, 503, "auth_unavailable");
      idp.down = false;
      await ok("/opaque", "tok-later");
    });
  } finally {
    await g.close();
    await up.close();
    await idp.close();
  }
});
