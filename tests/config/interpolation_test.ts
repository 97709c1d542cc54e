/** `${VAR}` interpolation: values only; a variable in a key is an error at the key. */
import { assertEquals } from "../helpers/assert.ts";
import { configErrors } from "./helpers.ts";

const KEPT = "in a key is not substituted: expected a key written out (variables go in values)";

Deno.test("interpolation: a variable in a key is an error at the key, block and flow style", async () => {
  assertEquals(
    await configErrors(`upstreams:
  \${USERS_NAME}: { targets: [ { url: "http://127.0.0.1:3001" } ] }
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: users, match: { path: /users, headers: { "\${HDR:-X-A}": b } }, upstream: users }
`),
    [
      `gateway.yaml:2:3: upstreams.\${USERS_NAME}: \${USERS_NAME} ${KEPT}`,
      `gateway.yaml:5:54: routes[0].match.headers.\${HDR:-X-A}: \${HDR} ${KEPT}`,
    ],
  );
});
