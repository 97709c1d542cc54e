/**
 * A revocation lasts as long as a provider would accept the token: past `exp`
 * by the clock skew it allows, not only until `exp`.
 */
import { assertEquals, assertError } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { sign } from "./idp.ts";

const SECRET = "a-shared-secret-of-at-least-32-bytes!!";
const T0 = 1_700_000_000_000;

Deno.test("a revoked token stays refused through the clock skew past its exp", async () => {
  const up = startUpstream();
  const clock = new ManualClock(T0);
  const g = await startGateway(
    baseConfig(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  bearer: { kind: jwt, secret: "${SECRET}", algorithms: [HS256], clock_skew_s: 30 }
routes:
  - { name: r, match: { path: /r }, upstream: up, auth: [bearer] }
`),
    { clock },
  );
  const key = { alg: "HS256", privateKey: new TextEncoder().encode(SECRET) };
  const exp = T0 / 1000 + 60;
  const token = (jti: string) => sign(key, { sub: "u", jti, exp });
  const call = (t: string) => fetch(`${g.url()}/r`, { headers: { authorization: `Bearer ${t}` } });
  const status = async (t: string) => {
    const res = await call(t);
    await res.body?.cancel();
    return res.status;
  };
  const revoke = async (jti: string) => {
    const res = await fetch(`${g.admin}/revocations`, {
      method: "POST",
      body: JSON.stringify({ jti, exp }),
    });
    return (await res.json()).revoked;
  };
  try {
    const first = await token("j-1");
    assertEquals(await status(first), 200);
    assertEquals(await revoke("j-1"), true);
    await assertError(await call(first), 401, "token_revoked");
    // Past exp, within the 30 s skew: the token is still accepted as such, so still revoked.
    clock.set(T0 + 65_000);
    await assertError(await call(first), 401, "token_revoked");
    // A token past its exp but inside the skew can still be revoked.
    const second = await token("j-2");
    assertEquals(await status(second), 200);
    assertEquals(await revoke("j-2"), true);
    await assertError(await call(second), 401, "token_revoked");
    // Past the skew the token is expired, revoked or not.
    clock.set(T0 + 91_000);
    await assertError(await call(first), 401, "token_expired");
  } finally {
    await g.close();
    await up.close();
  }
});
