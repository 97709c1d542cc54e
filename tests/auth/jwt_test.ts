/**
 * JWT through a real listener, against a real JWKS server on loopback: valid
 * tokens of every algorithm family, each attack refused with its own code,
 * key rotation, the refetch limit on unknown kids, and the IdP going down.
 */
import { base64url } from "jose";
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { closedPort, startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { publicPem, sign, signingKey, startIdp } from "./idp.ts";

const ISS = "https://idp.test";
const AUD = "api.test";
const HS_SECRET = "a-shared-secret-of-at-least-32-bytes!!";

Deno.test("jwt provider: verification, attacks, rotation and IdP outage end to end", async (t) => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const nowS = () => Math.floor(clock.now() / 1000);
  const idp = startIdp();
  const [rs1, es1, ed1] = await Promise.all([
    signingKey("RS256", "rs1"),
    signingKey("ES256", "es1"),
    signingKey("EdDSA", "ed1"),
  ]);
  idp.keys = [rs1, es1, ed1];
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  idp:
    kind: jwt
    jwks_url: "${idp.jwksUrl}"
    issuer: ${ISS}
    audience: ${AUD}
    algorithms: [RS256, ES256, EdDSA]
    query: access_token
    claims_to_headers: { email: X-User-Email, groups: X-User-Groups }
  shared: { kind: jwt, secret: "\${HS_SECRET}", algorithms: [HS256], issuer: ${ISS}, audience: ${AUD} }
  dead: { kind: jwt, jwks_url: "http://127.0.0.1:${closedPort()}/jwks", jwks_timeout_ms: 500 }
plans: { premium: {} }
consumers:
  - { id: mobile-app, plan: premium, subjects: [user-1], headers: { X-Tier: premium } }
routes:
  - { name: idp, match: { path: /idp }, upstream: up, auth: [idp] }
  - { name: shared, match: { path: /shared }, upstream: up, auth: [shared] }
  - { name: dead, match: { path: /dead }, upstream: up, auth: [dead] }
  - { name: scoped, match: { path: /scoped }, upstream: up, auth: [idp], scopes: [read:users, write:users] }
  - { name: public, match: { path: /public }, upstream: up }
`),
    { clock, env: { HS_SECRET } },
  );
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: ISS,
    aud: AUD,
    sub: "user-1",
    exp: nowS() + 3600,
    iat: nowS(),
    ...extra,
  });
  const call = (path: string, token?: string, headers: Record<string, string> = {}) =>
    fetch(`${g.url()}${path}`, {
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
  const refused = async (res: Response, code: string, status = 401) => {
    const challenge = res.headers.get("www-authenticate") ?? "";
    await assertError(res, status, code);
    return challenge;
  };

  try {
    await t.step(
      "valid RS256, ES256, EdDSA and HS256 tokens pass with identity headers",
      async () => {
        for (const key of [rs1, es1, ed1]) {
          const res = await call("/idp", await sign(key, claims({ email: "u1@example.com" })));
          const body = await res.json();
          assertEquals(res.status, 200, `${key.alg}: ${JSON.stringify(body)}`);
          assertEquals(body.headers["x-consumer-id"], "mobile-app");
          assertEquals(body.headers["x-user-id"], "user-1");
          assertEquals(body.headers["x-user-email"], "u1@example.com");
          assertEquals(body.headers["x-tier"], "premium");
          assertEquals(body.headers.authorization, undefined, "credentials are not forwarded");
        }
        // A list claim goes comma-joined, a member holding a comma or a quote quoted (RFC 9110
        // §5.6.1): bare, the group "viewer,admin" would read as the two groups viewer and admin.
        const listed = await (await call("/idp", await sign(rs1, claims({ groups: ["dev", 7] }))))
          .json();
        assertEquals(listed.headers["x-user-groups"], "dev,7");
        const groups = ["viewer,admin", 'say "hi"', " padded", "", "ops"];
        const quoted = await (await call("/idp", await sign(rs1, claims({ groups })))).json();
        assertEquals(
          quoted.headers["x-user-groups"],
          '"viewer,admin","say \\"hi\\""," padded","",ops',
        );
        // A sub equal to a consumer id is not that consumer: only `subjects` maps tokens.
        const unlisted = await (await call("/idp", await sign(rs1, claims({ sub: "mobile-app" }))))
          .json();
        assertEquals(unlisted.headers["x-consumer-id"], "idp:mobile-app");
        assertEquals(unlisted.headers["x-tier"], undefined);
        const hs = { alg: "HS256", privateKey: new TextEncoder().encode(HS_SECRET) };
        const res = await call("/shared", await sign(hs, claims()));
        assertEquals(res.status, 200);
        await res.body?.cancel();
      },
    );

    await t.step("a token in the query string works and never reaches the upstream", async () => {
      const token = await sign(rs1, claims());
      const res = await fetch(`${g.url()}/idp/x?a=1&access_token=${token}&b=2`);
      const body = await res.json();
      assertEquals(res.status, 200);
      assertEquals(body.url, "/idp/x?a=1&b=2");
      const other = await sign(rs1, claims({ sub: "user-2" }));
      await refused(
        await call(`/idp?access_token=${other}`, token),
        "ambiguous_credentials",
        400,
      );
      // Two Authorization fields (RFC 6750 §3.1: a repeated parameter is invalid_request).
      const two = new Headers([["authorization", `Bearer ${token}`], [
        "authorization",
        `Bearer ${other}`,
      ]]);
      const challenge = await refused(
        await fetch(`${g.url()}/idp`, { headers: two }),
        "ambiguous_credentials",
        400,
      );
      assertMatch(challenge, /error="invalid_request"/);
    });

    await t.step("each attack and each invalid claim is refused with a specific code", async () => {
      const [header] = (await sign(rs1, claims())).split(".");
      const stranger = await signingKey("RS256", "rs1");
      const pem = await publicPem(rs1);
      const cases: [string, string, string][] = [
        ["expired", await sign(rs1, claims({ exp: nowS() - 120 })), "token_expired"],
        ["not yet valid", await sign(rs1, claims({ nbf: nowS() + 600 })), "token_not_yet_valid"],
        ["wrong issuer", await sign(rs1, claims({ iss: "https://evil.test" })), "invalid_issuer"],
        ["wrong audience", await sign(rs1, claims({ aud: "other-api" })), "invalid_audience"],
        ["missing exp", await sign(rs1, claims({ exp: undefined })), "missing_claim"],
        [
          "alg none",
          `${b64({ alg: "none", kid: "rs1" })}.${b64(claims())}.`,
          "unsupported_algorithm",
        ],
        [
          "the RS256 public key used as an HS256 secret",
          await sign(
            { alg: "HS256", kid: "rs1", privateKey: new TextEncoder().encode(pem) },
            claims(),
          ),
          "unsupported_algorithm",
        ],
        [
          "tampered payload",
          `${header}.${b64(claims({ sub: "admin" }))}.${(await sign(rs1, claims())).split(".")[2]}`,
          "invalid_signature",
        ],
        [
          "signed by another key under a known kid",
          await sign(stranger, claims()),
          "invalid_signature",
        ],
        [
          "signed by an unknown key",
          await sign({ ...stranger, kid: "nobody" }, claims()),
          "unknown_key",
        ],
        ["garbage", "not.a.jwt", "invalid_token"],
      ];
      for (const [what, token, code] of cases) {
        const challenge = await refused(await call("/idp", token), code);
        assertMatch(
          challenge,
          /^Bearer realm="gateway", error="invalid_token", error_description="/,
          what,
        );
      }
      const missing = await refused(await call("/idp"), "missing_credentials");
      assertEquals(missing, 'Bearer realm="gateway"');
    });

    await t.step("a revoked jti is refused, also once the token was verified", async () => {
      const token = await sign(rs1, claims({ jti: "token-7" }));
      assertEquals((await drain(await call("/idp", token))).status, 200);
      const rev = await fetch(`${g.admin}/revocations`, {
        method: "POST",
        body: JSON.stringify({ jti: "token-7", exp: nowS() + 3600 }),
      });
      assertEquals(rev.status, 201);
      await rev.body?.cancel();
      await refused(await call("/idp", token), "token_revoked");
    });

    await t.step("scopes: all required, else 403 insufficient_scope (RFC 6750)", async () => {
      const both = await sign(rs1, claims({ scope: "read:users write:users" }));
      const res = await call("/scoped", both);
      assertEquals((await res.json()).headers["x-user-scopes"], "read:users write:users");
      const asList = await sign(rs1, claims({ scp: ["read:users", "write:users"] }));
      assertEquals((await drain(await call("/scoped", asList))).status, 200);
      const one = await sign(rs1, claims({ scope: "read:users" }));
      const challenge = await refused(await call("/scoped", one), "insufficient_scope", 403);
      assertMatch(challenge, /^Bearer realm="gateway", error="insufficient_scope", /);
      assertMatch(challenge, /scope="read:users write:users"$/);
      // A tab is no separator to the gateway but is one to an upstream that splits on
      // whitespace: "read:users\tadmin" would reach it as the two scopes read:users and admin.
      const tabbed = await sign(rs1, claims({ scope: "read:users\tadmin write:users read:users" }));
      const seen = await (await call("/scoped", tabbed)).json();
      assertEquals(seen.headers["x-user-scopes"], "write:users read:users");
      const scp = await sign(rs1, claims({ scp: "read:users\u00a0admin read:users write:users" }));
      assertEquals(
        (await (await call("/scoped", scp)).json()).headers["x-user-scopes"],
        "read:users write:users",
      );
    });

    await t.step("identity headers sent by a client never reach the upstream", async () => {
      const spoof = { "x-consumer-id": "admin", "x-user-id": "root", "x-user-email": "a@evil" };
      const res = await call("/idp", await sign(rs1, claims()), spoof);
      const body = await res.json();
      assertEquals(body.headers["x-consumer-id"], "mobile-app");
      assertEquals(body.headers["x-user-id"], "user-1");
      assertEquals(body.headers["x-user-email"], undefined);
      const pub = await (await call("/public", undefined, spoof)).json();
      assertEquals(pub.headers["x-consumer-id"], undefined);
      assertEquals(pub.headers["x-user-id"], undefined);
      // With `_` for `-`: a CGI-style upstream (Django, Rack) reads X_Consumer_Id as
      // HTTP_X_CONSUMER_ID, the variable X-Consumer-Id gives.
      const underscored = {
        "x_consumer_id": "admin",
        "X_User-Id": "root",
        "x_user_email": "a@evil",
        "x_tier": "gold",
        "x_request_kind": "kept",
      };
      const routes: [string, string?][] = [["/public"], ["/idp", await sign(rs1, claims())]];
      for (const [path, token] of routes) {
        const seen = (await (await call(path, token, underscored)).json()).headers;
        const names = Object.keys(seen).filter((n) => n.includes("_"));
        assertEquals(names, ["x_request_kind"], `${path}: ${JSON.stringify(seen)}`);
      }
    });

    await t.step("unknown kids refetch the JWKS at most once per interval", async () => {
      const before = idp.hits.jwks;
      for (let i = 0; i < 50; i++) {
        const token = await sign({ ...rs1, kid: `forged-${i}` }, claims());
        await refused(await call("/idp", token), "unknown_key");
      }
      // Verification warmed the cache at the start: within the interval, no refetch at all.
      assertEquals(idp.hits.jwks, before);
      clock.advance(31_000);
      for (let i = 0; i < 20; i++) {
        await drain(await call("/idp", await sign({ ...rs1, kid: `again-${i}` }, claims())));
      }
      assertEquals(idp.hits.jwks, before + 1);
    });

    await t.step("rotation: new kid passes without restart, dropped kid is refused", async () => {
      const rs2 = await signingKey("RS256", "rs2");
      const old = await sign(rs1, claims());
      assertEquals((await drain(await call("/idp", old))).status, 200);
      idp.keys = [rs2, es1, ed1];
      clock.advance(31_000);
      assertEquals((await drain(await call("/idp", await sign(rs2, claims())))).status, 200);
      await refused(await call("/idp", old), "unknown_key");
    });

    await t.step("IdP down: cached keys keep working; never-fetched keys are a 503", async () => {
      const token = await sign(es1, claims());
      idp.down = true;
      const before = idp.hits.jwks;
      clock.advance(700_000); // past jwks_cache_ttl_s: a background refresh, which fails
      const fresh = await sign(es1, claims());
      assertEquals((await drain(await call("/idp", fresh))).status, 200);
      await waitFor(() => idp.hits.jwks === before + 1);
      assertEquals((await drain(await call("/idp", token))).status, 200);
      await refused(
        await call("/idp", await sign({ ...es1, kid: "new" }, claims())),
        "unknown_key",
      );
      assertEquals(idp.hits.jwks, before + 1, "no retry within the interval");
      const res = await call("/dead", await sign(rs1, claims()));
      assertEquals(res.headers.get("www-authenticate"), null);
      await assertError(res, 503, "auth_unavailable");
    });
  } finally {
    await g.close();
    await up.close();
    await idp.close();
  }
});

function b64(v: unknown): string {
  return base64url.encode(JSON.stringify(v));
}

/** Polls `cond` for up to 10 s (a background refresh on a loaded machine can take a second). */
async function waitFor(cond: () => boolean): Promise<void> {
  for (const end = performance.now() + 10_000; !cond() && performance.now() < end;) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assertOk(cond(), "condition not reached within 10 s");
}

async function drain(res: Response): Promise<Response> {
  await res.body?.cancel();
  return res;
}
