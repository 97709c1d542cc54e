/** The admin API's answers for methods, paths and bodies it does not take, on every endpoint. */
import { assertEquals, assertError, assertMatch } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";

const CONFIG = `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { config_watch: { enabled: false } }
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
consumers: [ { id: app, api_keys: ["sha256:${"ab".repeat(32)}"] } ]
routes: [ { name: r, match: { path: / }, upstream: a } ]
`;

Deno.test("admin: a method an endpoint does not take is a 405 whose Allow lists HEAD with GET", async () => {
  const g = await startGateway(CONFIG);
  try {
    const cases: [string, string, string][] = [
      ["DELETE", "/healthz", "GET, HEAD"],
      ["POST", "/readyz", "GET, HEAD"],
      ["PUT", "/metrics", "GET, HEAD"],
      ["POST", "/config", "GET, HEAD"],
      ["DELETE", "/routes", "GET, HEAD"],
      ["POST", "/upstreams", "GET, HEAD"],
      ["POST", "/upstreams/a", "GET, HEAD"],
      ["GET", "/reload", "POST"],
      ["HEAD", "/reload", "POST"],
      ["PATCH", "/keys", "GET, HEAD, POST"],
      ["GET", "/keys/k", "DELETE"],
      ["GET", "/revocations", "POST"],
      ["GET", "/cache/purge", "POST"],
      ["POST", "/cache", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(`${g.admin}${path}`, { method });
      assertEquals([method, path, res.headers.get("allow")], [method, path, allow]);
      if (method === "HEAD") {
        assertEquals(res.status, 405);
        await res.body?.cancel();
      } else await assertError(res, 405, "method_not_allowed");
    }
    // What Allow names is taken.
    const head = await fetch(`${g.admin}/healthz`, { method: "HEAD" });
    assertEquals(head.status, 200);
    await head.body?.cancel();
    await assertError(await fetch(`${g.admin}/nope`), 404, "route_not_found");
  } finally {
    await g.close();
  }
});

Deno.test("admin: a body that is not a JSON object is a 400 saying what it is", async () => {
  const g = await startGateway(CONFIG);
  try {
    const cases: [string, RegExp][] = [
      ["{bad", /^The body is not JSON: .+/],
      ["", /^The body is empty: expected a JSON object$/],
      ["[1]", /^Expected a JSON object body, got an array$/],
      ['"x"', /^Expected a JSON object body, got a string$/],
      ["null", /^Expected a JSON object body, got null$/],
    ];
    for (const path of ["/keys", "/revocations", "/cache/purge"]) {
      for (const [body, message] of cases) {
        const res = await fetch(`${g.admin}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const answer = await assertError(res, 400, "bad_request");
        assertMatch(answer.error.message, message, `${path} ${JSON.stringify(body)}`);
      }
    }
  } finally {
    await g.close();
  }
});
