/**
 * An upstream connection's read buffer: it grows for a large response head and
 * goes back to its first size when the connection is parked, so the idle pool
 * (up to `max_idle` connections per target) holds 16 KiB each, not 1 MiB.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { UpstreamConnection } from "../../lib/proxy/http1/connection.ts";

Deno.test("upstream connection: a buffer grown by a large head is let go when the connection is parked", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const big = new Uint8Array(200 * 1024).fill(97);
  const served = listener.accept().then(async (peer) => {
    await peer.write(big);
    return peer;
  });
  const socket = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = new UpstreamConnection(socket, "test");
  const peer = await served;
  try {
    const initial = conn.buf.length;
    while (conn.buffered < big.length) assertOk(await conn.fill() > 0, "the peer's bytes arrive");
    assertOk(conn.buf.length > initial, `grown to ${conn.buf.length} bytes`);
    conn.consume(conn.end);
    conn.park(0);
    assertEquals(conn.buf.length, initial);
    // The watch read now pending is on the new buffer: a byte from the peer ends the idle connection.
    const ended = new Promise<void>((r) => (conn.onClosedWhileIdle = r));
    await peer.write(new Uint8Array([1]));
    await ended;
    assertEquals(conn.closed, true);
  } finally {
    conn.close();
    peer.close();
    listener.close();
  }
});
