/**
 * Anchors and aliases: a value shared by many routes loads; an alias bomb or an
 * alias inside the value it names is refused, positioned, before it is expanded.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { configErrors } from "./helpers.ts";

const UPSTREAMS = `upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`;

function routesSharingCors(count: number): string {
  const routes = Array.from(
    { length: count },
    (_, i) => `  - { name: r${i}, match: { path: /r${i} }, upstream: users, cors: *cors }`,
  );
  return `${UPSTREAMS}routes:
  - { name: first, match: { path: /first }, upstream: users, cors: &cors { origins: ["https://a.example"] } }
${routes.join("\n")}
`;
}

Deno.test("aliases: one anchor shared by 150 routes loads", async () => {
  const { config } = await parseConfig(routesSharingCors(150), "gateway.yaml", () => undefined);
  assertEquals(config.routes.length, 151);
  assertEquals(config.routes[150]!.cors, config.routes[0]!.cors);
});

Deno.test("aliases: a billion laughs is refused at the alias that crosses the bound, quickly", async () => {
  const levels = ["  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
  for (let i = 1; i < 9; i++) {
    levels.push(`  a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
  }
  const started = performance.now();
  const errors = await configErrors(`${UPSTREAMS}routes:
  - name: users
    match: { path: /users }
    upstream: users
    fallback:
      status: 200
      body:
${levels.map((l) => `      ${l}`).join("\n")}
`);
  assertOk(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
  assertEquals(errors, [
    `gateway.yaml:14:53: routes[0].fallback.body.a4[7]: alias *a3 expands the file past 100000 values: expected aliases that add fewer values (an alias bomb?)`,
  ]);
});

Deno.test("aliases: an alias inside the value it names is refused", async () => {
  assertEquals(
    await configErrors(`${UPSTREAMS}routes:
  - name: users
    match: { path: /users }
    upstream: users
    fallback: { status: 200, body: &b { items: [*b] } }
`),
    [
      `gateway.yaml:7:49: routes[0].fallback.body.items[0]: alias *b is inside the value it names: expected an alias to a value that ends before it`,
    ],
  );
});

Deno.test("aliases: each alias naming no anchor before it is an error at its line", async () => {
  assertEquals(
    await configErrors(`listeners:
  - *public
${UPSTREAMS}routes:
  - { name: users, match: { path: /users }, upstream: users, cors: *corss }
  - { name: later, match: { path: /later }, upstream: users, cors: &corss { origins: ["*"] } }
`),
    [
      `gateway.yaml:2:5: listeners[0]: alias *public names no anchor: expected &public on a value before it`,
      `gateway.yaml:6:68: routes[0].cors: alias *corss names no anchor: expected &corss on a value before it`,
    ],
  );
});
