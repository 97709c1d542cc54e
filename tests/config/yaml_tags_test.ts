/** YAML tags: the standard ones load as YAML says; one the parser does not know is an error. */
import { assertEquals } from "../helpers/assert.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { configErrors } from "./helpers.ts";

const config = (prefix: string) =>
  `upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: users, match: { path: ${prefix}/users }, upstream: users }
`;

Deno.test("yaml tags: an unknown tag is an error at its position, not a plain string", async () => {
  // Until 2026-12-07 `!env /users` loaded as "/users", the tag dropped without a word.
  assertEquals(await configErrors(config("!env ")), [
    "gateway.yaml:4:35: routes[0].match.path: unknown YAML tag !env: expected a value without one (or a standard tag such as !!str)",
  ]);
});

Deno.test("yaml tags: !!str is the standard string tag and loads", async () => {
  const { config: c } = await parseConfig(config("!!str "), "gateway.yaml", () => undefined);
  assertEquals(c.routes[0]!.match.path, "/users");
});
