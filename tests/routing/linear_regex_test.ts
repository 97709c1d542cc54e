/**
 * The router's regular expressions (`path_regex`, header and query `regex`,
 * `rewrite.regex`) run on the linear-time engine: a pattern that backtracks
 * catastrophically on V8's engine (`(a+)+$` against forty a's and a b is about
 * 2^40 steps) answers a crafted request at once, through a real listener.
 * Patterns that only a backtracking engine can run are config errors at their key.
 */
import { assertEquals } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { configErrors } from "../config/helpers.ts";

const CRAFTED = "a".repeat(40) + "b";

Deno.test("routing regexes: a crafted path, header or query value is answered, not backtracked on", async () => {
  const up = startUpstream((_req, r) => Response.json({ url: r.url }));
  const g = await startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes:
  - { name: path, match: { path_regex: "^/p/(a+)+$" }, upstream: a }
  - name: header
    match: { path: /h, headers: { X-Tag: { regex: "^(a+)+$" } } }
    upstream: a
  - name: query
    match: { path: /q, query: { tag: { regex: "^(a+)+$" } } }
    upstream: a
  - name: rewrite
    match: { path: /r }
    rewrite: { regex: "^/r/((a+)+)$", replacement: "/rewritten/$1" }
    upstream: a
  - name: named
    match: { path_regex: "^/n/(?P<first>[0-9]+)/(?<second>[0-9]+)$" }
    rewrite: { regex: "^/n/(?<first>[0-9]+)/([0-9]+)$", replacement: "/both/$<first>-$2/$$" }
    upstream: a
`));
  // Bounded, so that a regression fails here instead of holding the suite for hours.
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${g.url()}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
    const body = await res.json();
    return [res.status, body.url ?? body.error?.code];
  };
  try {
    assertEquals(await get(`/p/${CRAFTED}`), [404, "route_not_found"]);
    assertEquals(await get(`/p/aaa`), [200, "/p/aaa"]);
    assertEquals(await get("/h", { "x-tag": CRAFTED }), [404, "route_not_found"]);
    assertEquals(await get("/h", { "x-tag": "aaa" }), [200, "/h"]);
    assertEquals(await get(`/q?tag=${CRAFTED}`), [404, "route_not_found"]);
    assertEquals(await get("/q?tag=aa"), [200, "/q?tag=aa"]);
    // No match: the path goes up as it came.
    assertEquals(await get(`/r/${CRAFTED}`), [200, `/r/${CRAFTED}`]);
    assertEquals(await get("/r/aaaa"), [200, "/rewritten/aaaa"]);
    // Both spellings of a named group; `$<name>`, `$2` and `$$` expand as String.replace does.
    assertEquals(await get("/n/12/34"), [200, "/both/12-34/$"]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("routing regexes: backreferences and lookaround are config errors at their key", async () => {
  const errors = await configErrors(
    `upstreams: { a: { targets: [ { url: "http://127.0.0.1:3001" } ] } }
routes:
  - { name: backref, match: { path_regex: "^/(a)\\\\1$" }, upstream: a }
  - { name: ahead, match: { path: /x, headers: { X-A: { regex: "^(?=a)" } } }, upstream: a }
  - { name: rw, match: { path: /y }, rewrite: { regex: "(?<!a)b", replacement: "/" }, upstream: a }
`,
  );
  assertEquals(errors.length, 3, errors.join("\n"));
  assertEquals(
    errors.map((e) => e.replace(/: expected .*$/, "")),
    [
      "gateway.yaml:3:43: routes[0].match.path_regex",
      "gateway.yaml:4:64: routes[1].match.headers.X-A.regex",
      "gateway.yaml:5:56: routes[2].rewrite.regex",
    ],
  );
  for (const e of errors) {
    assertEquals(
      /expected a regular expression in RE2 syntax \(matched in linear time\): /.test(e),
      true,
      e,
    );
  }
});

Deno.test("path parameters: two in one segment are split as before, and a crafted segment is answered at once", async () => {
  const up = startUpstream((req, r) =>
    Response.json({ url: r.url, name: req.headers.get("x-name"), ext: req.headers.get("x-ext") })
  );
  const g = await startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: file
    match: { path_exact: "/files/{name}.{ext}/meta" }
    transform: { request: { headers: { set: { X-Name: "\${param.name}", X-Ext: "\${param.ext}" } } } }
    upstream: a
  - name: glued
    match: { path: "/g/{a}{b}{c}{d}/x" }
    upstream: a
`));
  const get = async (path: string) => {
    const res = await fetch(`${g.url()}${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = await res.json();
    return [res.status, body.url, body.name ?? null, body.ext ?? null];
  };
  try {
    // The first parameter takes as much as it can, as a backtracking engine splits it.
    assertEquals(await get("/files/report.tar.gz/meta"), [
      200,
      "/files/report.tar.gz/meta",
      "report.tar",
      "gz",
    ]);
    assertEquals(await get("/g/abcd/x/y"), [200, "/g/abcd/x/y", null, null]);
    // Before, V8's engine tried every split: 1.3 s for a 400-character segment, n^4 steps.
    const long = "a".repeat(4_000);
    assertEquals((await get(`/g/${long}/y`))[0], 404);
    assertEquals((await get(`/files/${"a.".repeat(2_000)}/meta/x`))[0], 404);
  } finally {
    await g.close();
    await up.close();
  }
});
