/** Names a route or consumer refers to must be defined in the config, whatever they are. */
import { assertEquals } from "../helpers/assert.ts";
import { configErrors } from "./helpers.ts";

Deno.test("references: names an empty object has (constructor, toString) are unknown too", async () => {
  assertEquals(
    await configErrors(`upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
auth:
  keys: { kind: api_key }
plans:
  free: { rate_limit: { algorithm: fixed_window, limit: 10, per: 1s } }
consumers:
  - { id: a, plan: hasOwnProperty, api_keys: ["key-a-0123456789"] }
routes:
  - { name: r, match: { path: / }, upstream: constructor, auth: [toString] }
`),
    [
      `gateway.yaml:8:20: consumers[0].plan: unknown plan "hasOwnProperty"`,
      `gateway.yaml:10:46: routes[0].upstream: unknown upstream "constructor"`,
      `gateway.yaml:10:66: routes[0].auth[0]: unknown auth provider "toString"`,
    ],
  );
});
