/** The upstream connection pool against raw loopback servers: idle limits, reuse, Host. */
import { assertEquals } from "../helpers/assert.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";

async function through(
  upstreamUrl: string,
  keepalive: string,
  fn: (g: TestGateway) => Promise<void>,
): Promise<void> {
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${upstreamUrl}" } ], keepalive: ${keepalive} }
routes:
  - { name: all, match: { path: / }, upstream: a }
`));
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

Deno.test("pool: a connection idle past idle_timeout_s is not reused", async () => {
  const up = startRawUpstream((x) => x.write(OK));
  try {
    await through(up.url, "{ idle_timeout_s: 0.3 }", async (g) => {
      assertEquals(await (await fetch(`${g.url()}/a`)).text(), "ok");
      assertEquals(await (await fetch(`${g.url()}/b`)).text(), "ok");
      assertEquals(up.connections(), 1, "reused within the timeout");
      // Well before the sweep (every 5 s) would close it.
      await new Promise((r) => setTimeout(r, 600));
      assertEquals(await (await fetch(`${g.url()}/c`)).text(), "ok");
      assertEquals(up.connections(), 2);
      assertEquals(await (await fetch(`${g.url()}/d`)).text(), "ok");
      assertEquals(up.connections(), 2, "the new one is reused in turn");
    });
  } finally {
    up.close();
  }
});

Deno.test("pool: two upstreams naming one target each keep their own keepalive settings", async () => {
  const up = startRawUpstream((x) => x.write(OK));
  const g = await startGateway(baseConfig(`
upstreams:
  short: { targets: [ { url: "${up.url}" } ], keepalive: { idle_timeout_s: 0.3 } }
  long: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: short, match: { path: /short }, upstream: short }
  - { name: long, match: { path: /long }, upstream: long }
`));
  try {
    assertEquals(await (await fetch(`${g.url()}/short/a`)).text(), "ok");
    assertEquals(await (await fetch(`${g.url()}/short/b`)).text(), "ok");
    assertEquals(up.connections(), 1, "reused within the timeout");
    await new Promise((r) => setTimeout(r, 600));
    // Until 2026-12-08 one pool served both, with the settings of the upstream built last: the
    // connection idle past short's 0.3 s was reused under long's 60 s.
    assertEquals(await (await fetch(`${g.url()}/short/c`)).text(), "ok");
    assertEquals(up.connections(), 2);
  } finally {
    await g.close();
    up.close();
  }
});
