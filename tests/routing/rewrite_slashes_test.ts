/**
 * A rewrite never sends a path that starts with `//` (a URL parser reads
 * `//evil/x` as the host `evil`), and with `merge_slashes` on (the default)
 * never one with `//` the request path did not have either.
 */
import { assertEquals } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";

const ROUTES = `
  - name: regex-slash
    match: { path: /rx }
    rewrite: { regex: "^/rx(.*)$", replacement: "/$1" }
    upstream: up
  - name: regex-join
    match: { path: /in }
    rewrite: { regex: "^/in(.*)$", replacement: "/api/$1" }
    upstream: up
  - { name: strip, match: { path: /s }, strip_prefix: true, upstream: up }
  - { name: to-root, match: { path: /r }, rewrite: { prefix: / }, upstream: up }
`;

async function withRewrites(
  security: string,
  fn: (sent: (target: string) => Promise<string>) => Promise<void>,
): Promise<void> {
  const up = startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"));
  let g: TestGateway | null = null;
  try {
    g = await startGateway(baseConfig(`${security}
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:${ROUTES}`));
    const gw = g;
    await fn(async (target) => {
      const before = up.paths.length;
      const res = await rawGet(gw.url(), target, "localhost");
      assertEquals(res.status, 204, `${target}: ${res.raw}`);
      assertEquals(up.paths.length, before + 1);
      return up.paths[before]!;
    });
  } finally {
    await g?.close();
    up.close();
  }
}

Deno.test("a regex rewrite that joins two slashes sends one (merge_slashes on)", async () => {
  await withRewrites("", async (sent) => {
    assertEquals(await sent("/rx/x?a=1"), "/x?a=1");
    assertEquals(await sent("/rx//evil.example/x"), "/evil.example/x");
    assertEquals(await sent("/rx"), "/");
    assertEquals(await sent("/in/users/7?q=%20"), "/api/users/7?q=%20");
    assertEquals(await sent("/in"), "/api/");
    // Unchanged: the other rewrites.
    assertEquals(await sent("/s/x"), "/x");
    assertEquals(await sent("/r/x"), "/x");
  });
});

Deno.test("with merge_slashes off, a rewrite still never sends a leading //", async () => {
  await withRewrites("security: { merge_slashes: false }", async (sent) => {
    assertEquals(await sent("/s//evil.example/x"), "/evil.example/x");
    assertEquals(await sent("/s///x//y"), "/x//y");
    assertEquals(await sent("/r//evil.example/x"), "/evil.example/x");
    assertEquals(await sent("/rx/x"), "/x");
    // Slashes the request has inside its path are its own: kept, as the setting says.
    assertEquals(await sent("/s/a//b"), "/a//b");
  });
});
