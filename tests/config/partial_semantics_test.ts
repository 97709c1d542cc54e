/**
 * Schema errors and cross-reference errors in one run: the cross-reference
 * checks judge the sections, list items and named entries that passed the
 * schema, and nothing that depends on a part that failed.
 */
import { assertEquals } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { INVALID, partialConfig } from "../../lib/config/partial.ts";
import { assertReloadRefused, configErrors } from "./helpers.ts";

Deno.test("one run: schema errors beside port clashes, unknown names and duplicates", async () => {
  assertEquals(
    await configErrors(`listeners:
  - { name: public, port: 8080 }
  - { name: other, port: 8080 }
upstreams:
  orders: { targets: [ { url: "http://127.0.0.1:3002" } ] }
  users: { targets: [ { url: "nope" } ] }
auth:
  keys: { kind: api_key }
consumers:
  - { id: a, plan: gold, api_keys: ["key-a-0123456789"] }
routes:
  - { name: orders, match: { path: "/a b" }, upstream: nowhere }
  - { name: orders, match: { path: /orders }, upstream: order, auth: [key] }
  - { name: orders, match: { path: /o2 }, upstream: orders }
`),
    [
      `gateway.yaml:3:26: listeners[1].port: port 8080 is already used by listener "public"`,
      `gateway.yaml:6:30: upstreams.users.targets[0].url: expected an absolute http:// or https:// URL`,
      `gateway.yaml:10:20: consumers[0].plan: unknown plan "gold"`,
      `gateway.yaml:12:36: routes[0].match.path: expected a path a request can have: " " is not allowed raw in a path (write %20)`,
      `gateway.yaml:13:57: routes[1].upstream: unknown upstream "order" (did you mean "orders"?)`,
      `gateway.yaml:13:71: routes[1].auth[0]: unknown auth provider "key" (did you mean "keys"?)`,
      // Index 1, not 0: routes[0] failed the schema, and indexes are those of the file.
      `gateway.yaml:14:13: routes[2].name: duplicate route name "orders" (also at index 1)`,
    ],
  );
});

Deno.test("one run: an upstream or auth provider that failed the schema is still a known name", async () => {
  assertEquals(
    await configErrors(`upstreams:
  users: { targets: [ { url: "\${USERS_URL}" } ] }
  orders: { targets: [ { url: "http://127.0.0.1:3002" } ], balance: rondom }
auth:
  bearer: { kind: jwtt }
routes:
  - { name: users, match: { path: /users }, upstream: users, auth: [bearer] }
  - { name: orders, match: { path: /orders }, upstream: orders }
  - { name: other, match: { path: /other }, upstream: userz }
`),
    [
      `gateway.yaml:2:30: upstreams.users.targets[0].url: environment variable USERS_URL is not set (set it, or write \${USERS_URL:-default})`,
      `gateway.yaml:3:69: upstreams.orders.balance: expected one of "round_robin", "least_conn", "random", "hash", got the string "rondom" (did you mean "random"?)`,
      `gateway.yaml:5:19: auth.bearer.kind: expected kind to be one of "jwt", "api_key", "oauth2_introspection", "mtls", got the string "jwtt" (did you mean "jwt"?)`,
      `gateway.yaml:9:55: routes[2].upstream: unknown upstream "userz" (did you mean "users"?)`,
    ],
  );
});

Deno.test("one run: a section that failed, or may be misspelt, hides the checks that read it", async () => {
  // store and versioning failed: nothing can say whether the async route or match.version is wrong.
  assertEquals(
    await configErrors(`store: { kind: redi }
versioning: 5
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: jobs, match: { path: /jobs, version: 1 }, upstream: users, async: { stream: jobs } }
  - { name: other, match: { path: /other }, upstream: userz }
`),
    [
      `gateway.yaml:1:16: store.kind: expected one of "memory", "redis", got the string "redi" (did you mean "redis"?)`,
      `gateway.yaml:2:13: versioning: expected object, got number 5`,
      `gateway.yaml:7:55: routes[1].upstream: unknown upstream "userz" (did you mean "users"?)`,
    ],
  );
  // "upstream" may be the upstreams section: its names are unknown, not absent.
  assertEquals(
    await configErrors(`upstream:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: users, match: { path: /users }, upstream: users }
`),
    [`gateway.yaml:1:1: upstream: unknown key "upstream" (did you mean "upstreams"?)`],
  );
});

Deno.test("one run: a route that failed may be the one serving the versioning default", async () => {
  const config = (version: string) =>
    `versioning: { default: 3 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: v1, match: { path: /users, version: 1 }, upstream: users }
  - { name: v3, match: { path: /users, version: ${version} }, upstream: users }
`;
  assertEquals(await configErrors(config("3, methods: [GIT]")), [
    `gateway.yaml:6:62: routes[1].match.methods[0]: expected one of "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", got the string "GIT" (did you mean "GET"?)`,
  ]);
  assertEquals(await configErrors(config("2")), [
    `gateway.yaml:1:24: versioning.default: no route serves version "3" (match.version lists 1, 2)`,
  ]);
});

const BROKEN = (url: string) =>
  baseConfig(`upstreams:
  users: { balance: rondom, targets: [ { url: "${url}" } ] }
routes:
  - { name: users, match: { path: /users }, upstream: user }
`);
const BROKEN_ERRORS = [
  `:6:21: upstreams.users.balance: expected one of "round_robin", "least_conn", "random", "hash", got the string "rondom" (did you mean "random"?)`,
  `:8:55: routes[0].upstream: unknown upstream "user" (did you mean "users"?)`,
];

Deno.test("one run: the gateway does not start, and says both", async () => {
  let error: unknown;
  try {
    const g = await startGateway(BROKEN("http://127.0.0.1:1"));
    await g.close();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${error}`);
  assertEquals(
    error.issues.map((i) => formatIssue(i).replace(/^.*\/gateway\.yaml/, "")),
    BROKEN_ERRORS,
  );
});

Deno.test("one run: a reload is refused with both, and the old config keeps serving", () =>
  assertReloadRefused(BROKEN, (file) => BROKEN_ERRORS.map((e) => `${file}${e}`)));

Deno.test("partial config: each part parsed alone is what the whole schema makes of it", async () => {
  const dir = new URL("../../config/", import.meta.url).pathname;
  const examples = [...Deno.readDirSync(`${dir}examples`)].map((e) => `examples/${e.name}`);
  const env = (name: string) =>
    ({
      ADMIN_TOKEN: "t".repeat(32),
      ANALYTICS_KEY: "analytics-key-0123",
      REPORTS_URL: "http://127.0.0.1:3005",
    })[name];
  for (const name of ["gateway.yaml", ...examples]) {
    const { config, source } = await parseConfig(
      await Deno.readTextFile(`${dir}${name}`),
      name,
      env,
    );
    const data = source.doc.toJS();
    assertEquals(await partialConfig(data, []), config, name);
    const failedRoute = await partialConfig(data, [["routes", 0, "name"]]);
    assertEquals(failedRoute.routes, [INVALID, ...config.routes.slice(1)], name);
    assertEquals({ ...failedRoute, routes: config.routes }, config, name);
  }
});
