/**
 * A JWKS that lists two keys under one kid (an IdP that rotated without a new
 * kid, or two signing services sharing one): a token signed by either passes,
 * as RFC 7517 §4.5 leaves kids unique only as a hint and jose's own key sets
 * try every match. A token signed by neither is still refused.
 */
import { assertEquals, assertError } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { jwksRouteConfig, sign, signingKey, startIdp } from "./idp.ts";

Deno.test("jwt provider: two JWKS keys under one kid both verify their tokens", async () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const idp = startIdp();
  const [older, newer, stranger] = await Promise.all([
    signingKey("RS256", "shared"),
    signingKey("RS256", "shared"),
    signingKey("RS256", "shared"),
  ]);
  idp.keys = [older, newer];
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(jwksRouteConfig(up.url, idp.jwksUrl)),
    { clock },
  );
  const claims = { sub: "user-1", exp: Math.floor(clock.now() / 1000) + 3600 };
  const call = async (key: typeof older) =>
    await fetch(`${g.url()}/`, { headers: { authorization: `Bearer ${await sign(key, claims)}` } });
  try {
    for (const [what, key] of [["the first key", older], ["the second key", newer]] as const) {
      const res = await call(key);
      const body = await res.json();
      assertEquals(res.status, 200, `${what}: ${JSON.stringify(body)}`);
      assertEquals(body.headers["x-user-id"], "user-1");
    }
    await assertError(await call(stranger), 401, "invalid_signature");
  } finally {
    await g.close();
    await up.close();
    await idp.close();
  }
});
