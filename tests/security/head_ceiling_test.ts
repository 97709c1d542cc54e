/**
 * The listener's 64 KiB head ceiling is a property of the head, not of how its
 * bytes arrive: a head at the ceiling whose blank line comes late is served as
 * one sent whole; one byte over is refused either way. The heads are for no
 * route: the gateway's 404 shows the listener took them (an upstream would
 * refuse a 64 KiB field itself).
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";
import { MAX_HEAD_BYTES } from "../../lib/server/http1/request_head.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
security: { max_header_bytes: ${MAX_HEAD_BYTES} }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: other, match: { path: /other }, upstream: app }
`;

const PREFIX = "GET /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: ";

/** A head of `size` bytes before its blank line, the last `late` bytes of it all sent 300 ms later. */
async function send(base: string, size: number, late: number): Promise<string> {
  const bytes = new TextEncoder().encode(PREFIX + "a".repeat(size - PREFIX.length) + "\r\n\r\n");
  const u = new URL(base);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  await conn.write(bytes.subarray(0, bytes.length - late));
  if (late > 0) {
    await new Promise((r) => setTimeout(r, 300));
    await conn.write(bytes.subarray(bytes.length - late)).catch(() => 0);
  }
  return (await readUntilClose(conn, 5000)).text;
}

Deno.test("a head of exactly 64 KiB is served however its blank line arrives; one byte more is 431", async () => {
  await withRig(config, async ({ g, up }) => {
    for (const late of [0, 1, 2, 3, 4]) {
      const res = parseResponse(await send(g.url(), MAX_HEAD_BYTES, late));
      assertEquals(res.status, 404, `the last ${late} bytes late: ${res.raw.slice(0, 300)}`);
      assertMatch(res.body, /"code":"route_not_found"/);
    }
    for (const late of [0, 3]) {
      const res = parseResponse(await send(g.url(), MAX_HEAD_BYTES + 1, late));
      assertEquals(res.status, 431, `the last ${late} bytes late`);
      assertMatch(res.body, /"code":"headers_too_large"/);
    }
    assertEquals(up.received.length, 0);
  });
});
