/**
 * A reload re-reads the files the config names, not only its own text: a key
 * file rotated in place is picked up by SIGHUP or POST /reload.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { publicPem, sign, signingKey } from "../auth/idp.ts";

Deno.test("reload: a JWT key file rotated in place is read again, though the config text is unchanged", async () => {
  const [old, next] = await Promise.all([signingKey("ES256", "k1"), signingKey("ES256", "k2")]);
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(`
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
auth: { p: { kind: jwt, public_key_file: key.pem, algorithms: [ES256], required_claims: [] } }
routes:
  - { name: r, match: { path: / }, upstream: up, auth: [p] }
`),
    { files: { "key.pem": await publicPem(old) } },
  );
  try {
    const call = async (key: typeof old) => {
      const token = await sign({ alg: key.alg, privateKey: key.privateKey }, { sub: "u" });
      const res = await fetch(`${g.url()}/x`, { headers: { authorization: `Bearer ${token}` } });
      await res.body?.cancel();
      return res.status;
    };
    assertEquals(await call(old), 200);
    assertEquals(await call(next), 401);
    await Deno.writeTextFile(`${g.dir}/key.pem`, await publicPem(next));
    const reload = await fetch(`${g.admin}/reload`, { method: "POST" });
    const body = await reload.json();
    assertEquals([reload.status, body.ok], [200, true]);
    assertEquals(await call(next), 200, "a token signed with the rotated key");
    assertEquals(await call(old), 401, "a token signed with the retired key");
    // A key file gone is a failed reload that names it; the rotated key goes on serving.
    await Deno.remove(`${g.dir}/key.pem`);
    const broken = await fetch(`${g.admin}/reload`, { method: "POST" });
    const failure = await broken.json();
    assertEquals([broken.status, failure.ok], [422, false]);
    assertMatch(
      failure.errors[0],
      /gateway\.yaml:\d+:\d+: auth\.p\.public_key_file: cannot read key\.pem/,
    );
    assertEquals(await call(next), 200);
  } finally {
    await g.close();
    await up.close();
  }
});
