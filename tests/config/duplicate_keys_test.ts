/**
 * A key written twice in one mapping is an error naming the file, the line, the
 * full key path of the second one and the line of the first, at any depth; the
 * gateway does not start on it and a reload with it keeps the old config.
 */
import { assertEquals } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { assertReloadRefused, configErrors } from "./helpers.ts";

const EXPECTED = "expected each key once per mapping";

Deno.test("duplicate keys: a named entry of a section", async () => {
  assertEquals(
    await configErrors(`upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
  users: { targets: [ { url: "http://127.0.0.1:3002" } ] }
routes:
  - { name: users, match: { path: /users }, upstream: users }
`),
    [`gateway.yaml:3:3: upstreams.users: duplicate key "users" (also at line 2): ${EXPECTED}`],
  );
});

Deno.test("duplicate keys: inside list items, block and flow style, several at once", async () => {
  assertEquals(
    await configErrors(`upstreams:
  users:
    targets:
      - url: "http://127.0.0.1:3001"
        weight: 1
        url: "http://127.0.0.1:3002"
routes:
  - { name: a, match: { path: /a, path: /b }, upstream: users }
  - name: b
    match:
      path: /c
      methods: [GET]
      path: /d
    upstream: users
`),
    [
      `gateway.yaml:6:9: upstreams.users.targets[0].url: duplicate key "url" (also at line 4): ${EXPECTED}`,
      `gateway.yaml:8:35: routes[0].match.path: duplicate key "path" (also at line 8): ${EXPECTED}`,
      `gateway.yaml:13:7: routes[1].match.path: duplicate key "path" (also at line 11): ${EXPECTED}`,
    ],
  );
});

Deno.test("duplicate keys: a top-level section, and keys that differ only in YAML type", async () => {
  assertEquals(
    await configErrors(`routes: []
plans:
  1: { rate_limit: { algorithm: fixed_window, limit: 1, per: 1s } }
  "1": { rate_limit: { algorithm: fixed_window, limit: 2, per: 1s } }
routes: []
`),
    [
      `gateway.yaml:4:3: plans.1: duplicate key "1" (also at line 3): ${EXPECTED}`,
      `gateway.yaml:5:1: routes: duplicate key "routes" (also at line 1): ${EXPECTED}`,
    ],
  );
});

Deno.test("duplicate keys: merge keys (<<) are not duplicates", async () => {
  assertEquals(
    await configErrors(`x-timeouts: &t { connect_ms: 100 }
upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    timeout:
      <<: *t
      connect_ms: 200
`),
    [`gateway.yaml:1:1: x-timeouts: unknown key "x-timeouts"`],
  );
});

const DUPLICATED_UPSTREAM = (url: string) =>
  baseConfig(`upstreams:
  users: { targets: [ { url: "${url}" } ] }
  users: { targets: [ { url: "${url}" } ] }
routes:
  - { name: users, match: { path: /users }, upstream: users }
`);

Deno.test("duplicate keys: the gateway does not start", async () => {
  let error: unknown;
  try {
    const g = await startGateway(DUPLICATED_UPSTREAM("http://127.0.0.1:1"));
    await g.close();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${error}`);
  assertEquals(
    error.issues.map((i) => formatIssue(i).replace(/^.*\/gateway\.yaml:/, "gateway.yaml:")),
    [`gateway.yaml:7:3: upstreams.users: duplicate key "users" (also at line 6): ${EXPECTED}`],
  );
});

Deno.test("duplicate keys: a reload with one is refused and the old config keeps serving", () =>
  assertReloadRefused(DUPLICATED_UPSTREAM, (file) => [
    `${file}:7:3: upstreams.users: duplicate key "users" (also at line 6): ${EXPECTED}`,
  ]));
