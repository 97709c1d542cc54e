/**
 * Named groups of a `path_regex` are path parameters like `{name}` ones, decoded
 * the same way: `${param.id}` of `/r/caf%C3%A9` is `café` whichever way the route
 * captures it, in a header (UTF-8) and in an aggregated call's path (encoded once),
 * and `(?P<name>...)` is a parameter an aggregated call may name as `(?<name>...)` is.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { rawExchange } from "../helpers/raw.ts";

Deno.test("routing: path_regex named groups are decoded as {name} parameters are", async () => {
  // Raw, to see the header's bytes and the path exactly as they arrive.
  const up = startRawUpstream(async (x) => {
    const body = JSON.stringify({ head: x.head });
    await x.write(
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
  });
  const parts = startUpstream((_req, r) => Response.json({ url: r.url }));
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
  parts: { targets: [ { url: "${parts.url}" } ] }
routes:
  - name: braces
    match: { path: "/b/{id}" }
    upstream: a
    transform: { request: { headers: { set: { X-Id: "\${param.id}" } } } }
  - name: regex
    match: { path_regex: "^/r/(?<id>[^/]+)(?:/(?<rest>x))?$" }
    upstream: a
    transform: { request: { headers: { set: { X-Id: "\${param.id}", X-Rest: "\${param.rest}" } } } }
  - name: regex_aggregate
    match: { path_regex: "^/agg/(?<id>[^/]+)$" }
    aggregate: { calls: [ { key: part, upstream: parts, path: "/users/\${param.id}" } ] }
  - name: python_named
    match: { path_regex: "^/py/(?P<id>[^/]+)$" }
    aggregate: { calls: [ { key: part, upstream: parts, path: "/users/\${param.id}" } ] }
`));
  /** The X-Id and X-Rest lines the upstream got (a byte string). */
  const idLines = async (path: string) => {
    const text = await rawExchange(
      g.url(),
      `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    const head: string = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)).head;
    return head.split("\r\n").filter((l) => /^x-(id|rest):/i.test(l)).map((l) => l.toLowerCase());
  };
  try {
    const cafe = "x-id: café"; // its UTF-8 bytes, read back as UTF-8
    assertEquals(await idLines("/b/caf%C3%A9"), [cafe]);
    assertEquals(await idLines("/r/caf%C3%A9"), [cafe]);
    assertEquals(await idLines("/r/a%20b/x"), ["x-id: a b", "x-rest: x"]);
    // Escapes that decode to no text stay as written, as for {name}.
    assertEquals(await idLines("/r/%FF"), ["x-id: %ff"]);

    const res = await fetch(`${g.url()}/agg/caf%C3%A9`);
    assertEquals(await res.json(), { part: { url: "/users/caf%C3%A9" } });
    const space = await fetch(`${g.url()}/agg/a%20b`);
    assertEquals(await space.json(), { part: { url: "/users/a%20b" } });
    // The other spelling of a named group captures a parameter too (it was a load error).
    const py = await fetch(`${g.url()}/py/caf%C3%A9`);
    assertEquals(await py.json(), { part: { url: "/users/caf%C3%A9" } });
  } finally {
    await g.close();
    up.close();
    await parts.close();
  }
});
