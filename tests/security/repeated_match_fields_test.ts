/**
 * A route matched on a field's or query parameter's value, and a request that
 * repeats it: the router would read one value (the joined field, the first
 * parameter) and an upstream another (Go's Header.Get reads the first field,
 * many frameworks the last parameter). Such a request is refused, never routed
 * on one reading.
 */
import { assertEquals } from "../helpers/assert.ts";
import { rawRequest } from "../helpers/raw.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: alice, api_keys: ["secret-alice"] }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: hdr, match: { path: /r, headers: { X-Role: internal } }, upstream: app, auth: [keys] }
  - { name: qry, match: { path: /q, query: { role: internal } }, upstream: app, auth: [keys] }
  - { name: flag, match: { path: /f, headers: { X-Flag: { present: true } } }, upstream: app }
  - { name: open, match: { path: / }, upstream: app }
`;

const get = (
  target: string,
  ...extra: string[]
) => [`GET ${target} HTTP/1.1`, "Host: localhost", "Connection: close", ...extra];

Deno.test("a repeated field or query parameter a route matches by value is refused with 400", async () => {
  await withRig(config, async ({ g, up }) => {
    const refused: [string[], string][] = [
      [get("/r", "X-Role: internal", "X-Role: internal"), "Repeated X-Role field"],
      [get("/r", "x-role: public", "X-ROLE: internal"), "Repeated X-Role field"],
      [get("/q?role=public&role=internal"), "Repeated query parameter role"],
      [get("/q?role=internal&x=1&role=internal"), "Repeated query parameter role"],
    ];
    for (const [head, message] of refused) {
      const res = await rawRequest(g.url(), head);
      assertEquals(res.status, 400, `${head.join(" | ")}: ${res.raw}`);
      const body = JSON.parse(res.body);
      assertEquals([body.error.code, body.error.message], ["bad_request", message]);
    }
    assertEquals(up.received.length, 0);

    // Sent once, the value decides as before; elsewhere, or matched by presence, repeats pass.
    assertEquals((await rawRequest(g.url(), get("/r", "X-Role: internal"))).status, 401);
    assertEquals((await rawRequest(g.url(), get("/q?role=internal"))).status, 401);
    assertEquals((await rawRequest(g.url(), get("/r", "X-Role: public"))).status, 200);
    assertEquals((await rawRequest(g.url(), get("/x", "X-Role: a", "X-Role: b"))).status, 200);
    assertEquals((await rawRequest(g.url(), get("/f", "X-Flag: 1", "X-Flag: 2"))).status, 200);
    assertEquals(up.received.map((r) => r.url), ["/r", "/x", "/f"]);
  });
});
