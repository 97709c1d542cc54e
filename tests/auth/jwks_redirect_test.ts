/**
 * A JWKS endpoint that answers with a redirect: the gateway does not follow
 * it. Following took the keys from whatever origin the Location named, and
 * tokens signed with them passed: the keys that decide who gets in came from
 * a server the config never named.
 */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { jwksRouteConfig, sign, signingKey, startIdp } from "./idp.ts";

Deno.test("jwt provider: a JWKS redirect is a failed fetch, not followed", async () => {
  const stranger = startIdp();
  const strangerKey = await signingKey("RS256", "k1");
  stranger.keys = [strangerKey];
  const redirecting = startUpstream(
    () => new Response(null, { status: 302, headers: { location: stranger.jwksUrl } }),
    "jwks",
  );
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(jwksRouteConfig(up.url, `${redirecting.url}/jwks`)),
  );
  try {
    const token = await sign(strangerKey, {
      sub: "admin",
      exp: Math.floor(Date.now() / 1000) + 3600,
    });
    const res = await fetch(`${g.url()}/`, { headers: { authorization: `Bearer ${token}` } });
    await assertError(res, 503, "auth_unavailable");
    assertOk(redirecting.received.length >= 1, "the configured endpoint was asked");
    assertEquals(stranger.hits.jwks, 0, "the keys were not fetched from the redirect's target");
    assertEquals(up.received.length, 0);
  } finally {
    await g.close();
    await up.close();
    await redirecting.close();
    await stranger.close();
  }
});
