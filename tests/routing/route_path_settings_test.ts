/**
 * A route path the security settings keep every request path from having is
 * refused at load: `//` with merge_slashes on (requests have it merged), a `;`
 * with allow_path_parameters off (requests with it are refused). With the
 * setting that lets requests keep them, the route loads and serves them.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";

const ANSWER = "HTTP/1.1 204 No Content\r\n\r\n";

function config(security: string, key: string, path: string, up: string, rest: string): string {
  return baseConfig(`${security}
upstreams:
  up: { targets: [ { url: "${up}" } ] }
  rest: { targets: [ { url: "${rest}" } ] }
routes:
  - { name: spelt, match: { ${key}: "${path}" }, upstream: up }
  - { name: rest, match: { path: / }, upstream: rest }
`);
}

const CASES: [string, string, string, RegExp, string][] = [
  ["security: { merge_slashes: false }", "path", "/a//b", /\/\/ is merged/, "/a//b/c?x"],
  ["security: { allow_path_parameters: true }", "path_exact", "/a;v=1", /a ; parameter/, "/a;v=1"],
];

Deno.test("a route path the security settings make unreachable is refused at load", async () => {
  const up = startRawUpstream((x) => x.write(ANSWER));
  try {
    for (const [, key, path, message] of CASES) {
      let error = "started";
      try {
        const g = await startGateway(config("", key, path, up.url, up.url));
        await g.close();
      } catch (e) {
        error = String(e);
      }
      assertMatch(
        error,
        new RegExp(
          `routes\\[0\\]\\.match\\.${key}: expected a path a request can have: ${message.source}`,
        ),
        path,
      );
    }
  } finally {
    up.close();
  }
});

Deno.test("with the setting that keeps them, such a route serves its paths", async () => {
  for (const [security, key, path, , target] of CASES) {
    const up = startRawUpstream((x) => x.write(ANSWER));
    const rest = startRawUpstream((x) => x.write(ANSWER));
    const g = await startGateway(config(security, key, path, up.url, rest.url));
    try {
      const res = await rawGet(g.url(), target, "localhost");
      assertEquals(res.status, 204, `${target}: ${res.raw}`);
      assertEquals([up.paths, rest.paths], [[target], []]);
    } finally {
      await g.close();
      up.close();
      rest.close();
    }
  }
});
