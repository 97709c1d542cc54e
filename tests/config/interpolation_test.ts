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

Deno.test("interpolation: an unquoted ${VAR} inside { } is one error saying what to write", async () => {
  // Until 2026-12-07 the parser's cascade came instead: nine "Unexpected ..." lines.
  const errors = await configErrors(
    `listeners: [ { name: public, host: 127.0.0.1, port: \${PORT} } ]\nroutes: []\n`,
  );
  assertEquals(errors, [
    'gateway.yaml:1:53: (root): invalid YAML: ${PORT} inside { } or [ ], where { opens a mapping: quote it ("${PORT}", a string), or write that mapping in block style (one key a line), where an unquoted ${PORT} may load as a number or true/false',
  ]);
  // Quoted, or in block style, it parses.
  const quoted = await configErrors(
    `listeners: [ { name: public, host: 127.0.0.1, port: "\${PORT}" } ]\nroutes: []\n`,
  );
  assertEquals(quoted.some((e) => e.includes("invalid YAML")), false);
});
