/**
 * Auth configuration mistakes stop the gateway with positioned errors (file,
 * line, column, key path, what was expected); a reload with one keeps the
 * previous plan serving.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { publicPem, signingKey } from "./idp.ts";

async function configErrors(body: string, files: Record<string, string> = {}): Promise<string> {
  try {
    const g = await startGateway(baseConfig(body), { files });
    await g.close();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map(formatIssue).join("\n");
    throw e;
  }
  throw new Error("expected a configuration error");
}

const ROUTE = `upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: / }, upstream: up, auth: [p] }`;

Deno.test("auth config errors name the file, line, key and what was expected", async () => {
  const ec = await publicPem(await signingKey("ES256", "k"));
  const cases: [string, string, Record<string, string>?][] = [
    [
      `auth: { p: { kind: api_key } }
consumers:
  - { id: a, api_keys: ["sha256:abc"] }
${ROUTE}`,
      String
        .raw`gateway\.yaml:7:25: consumers\[0\]\.api_keys\[0\]: expected sha256: followed by 64 hex digits`,
    ],
    [
      `auth: { p: { kind: api_key } }
consumers:
  - { id: a, api_keys: ["same-key-123456"] }
  - { id: b, api_keys: ["same-key-123456"] }
${ROUTE}`,
      String.raw`:8:25: consumers\[1\]\.api_keys\[0\]: this key also belongs to consumer "a"`,
    ],
    [
      `auth: { p: { kind: jwt, secret: short, algorithms: [HS256] } }\n${ROUTE}`,
      String
        .raw`:5:33: auth\.p\.secret: expected a secret of at least 32 bytes for HS256 \(RFC 7518 §3\.2\); got 5`,
    ],
    [
      `auth: { p: { kind: jwt, jwks_file: missing.json } }\n${ROUTE}`,
      String.raw`auth\.p\.jwks_file: cannot read missing\.json`,
    ],
    [
      `auth: { p: { kind: jwt, jwks_file: keys.json } }\n${ROUTE}`,
      String.raw`auth\.p\.jwks_file: keys\.json is not a JWKS document`,
      { "keys.json": "[1, 2]" },
    ],
    [
      `auth: { p: { kind: jwt, public_key_file: ec.pem, algorithms: [RS256] } }\n${ROUTE}`,
      String.raw`auth\.p\.public_key_file: ec\.pem holds no key usable with the algorithms RS256`,
      { "ec.pem": ec },
    ],
    [
      `auth: { p: { kind: jwt, jwks_url: "http://idp/jwks", secret: "${
        "x".repeat(40)
      }" } }\n${ROUTE}`,
      String.raw`auth\.p: expected exactly one of jwks_url, jwks_file, public_key_file or secret`,
    ],
    [
      `auth: { p: { kind: api_key, identity_headers: { consumer: "X Consumer" } } }\n${ROUTE}`,
      String.raw`auth\.p\.identity_headers\.consumer: expected an HTTP header name`,
    ],
    [
      `auth: { p: { kind: api_key } }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: / }, upstream: up, auth: [p], scopes: ["read users"] }`,
      String.raw`routes\[0\]\.scopes\[0\]: expected a scope token \(no spaces, quotes or \\\)`,
    ],
    [
      `auth: { keys: { kind: api_key } }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: / }, upstream: up, auth: [key] }`,
      String.raw`routes\[0\]\.auth\[0\]: unknown auth provider "key" \(did you mean "keys"\?\)`,
    ],
  ];
  for (const [body, expected, files] of cases) {
    assertMatch(await configErrors(body, files), new RegExp(expected));
  }
});

Deno.test("a reload with a broken auth config keeps the previous plan", async () => {
  const up = startUpstream();
  const good = baseConfig(`
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
auth: { p: { kind: api_key } }
consumers: [ { id: a, api_keys: ["key-a-0123456789"] } ]
routes:
  - { name: r, match: { path: / }, upstream: up, auth: [p] }
`);
  const g = await startGateway(good);
  try {
    await Deno.writeTextFile(g.file, good.replace("key-a-0123456789", "sha256:nothex"));
    const r = await g.gw.reload();
    assertEquals(r.ok, false);
    assertOk(r.errors.some((e) => e.includes("expected sha256: followed by 64 hex digits")));
    const res = await fetch(`${g.url()}/`, { headers: { "x-api-key": "key-a-0123456789" } });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("config/examples/auth.yaml is a valid configuration", async () => {
  const file = new URL("../../config/examples/auth.yaml", import.meta.url).pathname;
  const loaded = await parseConfig(await Deno.readTextFile(file), file, () => undefined);
  assertEquals(Object.keys(loaded.config.auth), ["bearer", "keys", "opaque", "certs"]);
});
