/**
 * `Connection` is a list whose items are separated by a comma and optional
 * whitespace, spaces or tabs (RFC 9110 §5.6.1): `close` after a tab ends the
 * connection as after a space.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { parseResponse, rawExchange, readUntilClose } from "../helpers/raw.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`;

Deno.test("Connection: close after a tab closes the connection after the answer", async () => {
  await withRig(config, async ({ g, up }) => {
    const u = new URL(g.url());
    for (const separator of [", ", ",\t", "\t,\t"]) {
      const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
      await conn.write(new TextEncoder().encode(
        `GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive${separator}close\r\n\r\n`,
      ));
      // Kept open (75 s keep-alive), the read would last until the 20 s limit closes it.
      const { text, ms } = await readUntilClose(conn, 20_000);
      const res = parseResponse(text);
      assertEquals(res.status, 200, JSON.stringify(separator));
      assertMatch(res.headers.get("connection") ?? "", /close/i);
      assertOk(ms < 10_000, `${JSON.stringify(separator)}: closed after ${ms} ms`);
    }
    assertEquals(up.received.length, 3);
  });
});

Deno.test("Connection: close on one line is not undone by keep-alive on another", async () => {
  // RFC 9110 §7.6.1: the options of every Connection line count; a close among them ends the
  // connection (RFC 9112 §9.6). An HTTP/1.0 head's later `keep-alive` line used to reopen it.
  await withRig(config, async ({ g, up }) => {
    for (const version of ["HTTP/1.0", "HTTP/1.1"]) {
      const text = await rawExchange(
        g.url(),
        `GET /first ${version}\r\nHost: a.example\r\nConnection: close\r\n` +
          `Connection: keep-alive\r\n\r\nGET /second ${version}\r\nHost: a.example\r\n\r\n`,
        5_000,
      );
      const res = parseResponse(text);
      assertEquals(res.status, 200, version);
      assertMatch(res.headers.get("connection") ?? "", /close/i, version);
      assertEquals(text.match(/^HTTP\/1\.1 /gm)?.length, 1, `${version}: ${text}`);
    }
    assertEquals(up.received.map((r) => r.url), ["/first", "/first"]);
  });
});
