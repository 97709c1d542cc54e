/**
 * The introspection cache under a flood of made-up tokens: each new token is
 * introspected and its inactive answer cached, so what the cache holds per
 * token must not grow with the token's length (up to the head limits). Read
 * through /metrics on the admin listener after real requests.
 */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startIdp } from "./idp.ts";

/** The value of one sample of /metrics, or null when it is absent. */
function sample(text: string, series: string): number | null {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

Deno.test("oauth2_introspection cache: long made-up tokens are kept by digest, within cache_size", async () => {
  const idp = startIdp();
  const up = startUpstream();
  const g = await startGateway(baseConfig(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  opaque:
    kind: oauth2_introspection
    url: "${idp.introspectUrl}"
    client_id: gateway
    client_secret: s
    cache_size: 200
    negative_cache_ttl_s: 600
routes:
  - { name: opaque, match: { path: /opaque }, upstream: up, auth: [opaque] }
`));
  const call = (token: string) =>
    fetch(`${g.url()}/opaque`, { headers: { authorization: `Bearer ${token}` } });
  const scrape = async () => {
    const text = await (await fetch(`${g.admin}/metrics`)).text();
    return {
      entries: sample(text, 'gateway_auth_cache_entries{provider="opaque"}'),
      keyChars: sample(text, 'gateway_auth_cache_key_chars{provider="opaque"}'),
    };
  };
  const padding = "x".repeat(12_000);
  try {
    // 300 tokens of 12 KB each: 3.6 MB of keys before, 200 digests of 51 characters now.
    for (let i = 0; i < 300; i += 25) {
      await Promise.all(Array.from({ length: 25 }, async (_, j) => {
        await assertError(await call(`made-up-${i + j}-${padding}`), 401, "token_inactive");
      }));
    }
    const { entries, keyChars } = await scrape();
    assertEquals(entries, 200);
    assertOk(keyChars !== null && keyChars <= 200 * 51, `key characters: ${keyChars}`);

    // A long token's answer is still reused, found by its digest.
    idp.tokens.set(`long-${padding}`, { active: true, sub: "u1", exp: Date.now() / 1000 + 600 });
    const before = idp.hits.introspect;
    for (let i = 0; i < 3; i++) {
      const res = await call(`long-${padding}`);
      assertEquals(res.status, 200);
      await res.body?.cancel();
    }
    assertEquals(idp.hits.introspect, before + 1);

    // A short token that spells a digest is not taken for the long token it is the digest of.
    const { cacheKeyOf } = await import("../../lib/auth/introspection.ts");
    const digest = cacheKeyOf(`long-${padding}`);
    assertEquals(digest.length, 51);
    await assertError(await call(digest), 401, "token_inactive");
    assertEquals(idp.hits.introspect, before + 2);
  } finally {
    await g.close();
    await up.close();
    await idp.close();
  }
});
