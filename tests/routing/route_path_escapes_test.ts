/**
 * Requests are routed on their normalised path, whose escapes are upper-case,
 * with unreserved characters decoded: a route path spelt otherwise could never
 * match, and is refused at load with the spelling to write.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";

function config(upstream: string, path: string, rest = upstream): string {
  return baseConfig(`
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
  rest: { targets: [ { url: "${rest}" } ] }
routes:
  - { name: spelt, match: { path: "${path}" }, upstream: up }
  - { name: rest, match: { path: / }, upstream: rest }
`);
}

Deno.test("a route path with an escape no request path can have is refused at load", async () => {
  const up = startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"));
  try {
    const cases: [string, RegExp][] = [
      ["/caf%c3%a9", /%c3 is matched upper-case \(write %C3\)/],
      ["/%7Euser", /%7E is matched decoded \(write ~\)/],
      ["/a/%2e%2E/b", /%2e is matched decoded \(write \.\)/],
      ["/files/a%2Fb", /%2F is refused in request paths/],
      ["/x%00", /%00 is refused in request paths/],
      ["/100%", /"%" must begin an escape of two hex digits \(write %25\)/],
      ["/t/{id}/%zz", /"%" must begin an escape/],
    ];
    for (const [path, message] of cases) {
      let error = "started";
      try {
        const g = await startGateway(config(up.url, path));
        await g.close();
      } catch (e) {
        error = String(e);
      }
      assertMatch(error, new RegExp(`routes\\[0\\]\\.match\\.path: .*${message.source}`), path);
    }
  } finally {
    up.close();
  }
});

Deno.test("a route path spelt as requests are normalised matches every spelling of a request", async () => {
  const up = startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"));
  const rest = startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"));
  const g = await startGateway(config(up.url, "/caf%C3%A9/~user", rest.url));
  try {
    for (const target of ["/caf%C3%A9/~user/x", "/caf%c3%a9/%7euser/x", "/café/%7Euser/x"]) {
      const res = await rawGet(g.url(), target, "localhost");
      assertEquals(res.status, 204, `${target}: ${res.raw}`);
      assertEquals(up.paths.at(-1), "/caf%C3%A9/~user/x", target);
    }
    assertEquals([up.paths.length, rest.paths.length], [3, 0]);
  } finally {
    await g.close();
    up.close();
    rest.close();
  }
});
