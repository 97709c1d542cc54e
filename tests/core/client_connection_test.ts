/**
 * A client connection's read buffer: it starts small, grows for a large
 * request head, and goes back to its first size when the connection waits for
 * its next request, so that each idle keep-alive connection holds 4 KiB, not
 * what its largest head needed (up to 65 KiB).
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { ClientConnection } from "../../lib/server/http1/client_connection.ts";

async function pair(): Promise<{ conn: ClientConnection; peer: Deno.Conn; close(): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const peer = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = new ClientConnection(await accepted);
  listener.close();
  return {
    conn,
    peer,
    close() {
      conn.close();
      try {
        peer.close();
      } catch {
        // closed by the test
      }
    },
  };
}

Deno.test("client connection: a buffer grown by a large head goes back to its first size when idle", async () => {
  const { conn, peer, close } = await pair();
  try {
    const initial = conn.buf.length;
    assertEquals(initial, 4096);
    const big = new Uint8Array(20 * 1024).fill(97);
    await peer.write(big);
    while (conn.buffered < big.length) assertOk(await conn.fill() > 0, "the peer's bytes arrive");
    assertOk(conn.buf.length > initial, `grown to ${conn.buf.length} bytes`);
    conn.consume(conn.end);
    conn.idle();
    assertEquals(conn.buf.length, initial);
    // The next request is read into the new buffer.
    await peer.write(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
    assertEquals(await conn.fill(), 16);
    assertEquals(
      new TextDecoder().decode(conn.buf.subarray(conn.start, conn.end)),
      "GET / HTTP/1.1\r\n",
    );
  } finally {
    close();
  }
});

Deno.test("client connection: a buffer stays while a read into it is in flight, or bytes wait in it", async () => {
  const { conn, peer, close } = await pair();
  try {
    await peer.write(new Uint8Array(20 * 1024).fill(97));
    while (conn.buffered < 20 * 1024) await conn.fill();
    const grown = conn.buf;
    // A pipelined request's first bytes are still buffered: nothing is dropped.
    conn.consume(conn.end - 5);
    conn.idle();
    assertOk(conn.buf === grown, "kept with bytes in it");
    conn.consume(conn.end);
    const ended = new Promise<void>((r) => conn.watchForEnd(r));
    conn.idle();
    assertOk(conn.buf === grown, "kept under the watch read");
    peer.close();
    await ended;
  } finally {
    close();
  }
});

Deno.test("client connection: reading into an empty buffer reads nothing and is not the end", async () => {
  const { conn, peer, close } = await pair();
  try {
    assertEquals(await conn.readInto(new Uint8Array(0)), 0);
    await peer.write(new TextEncoder().encode("abc"));
    const into = new Uint8Array(8);
    assertEquals(await conn.readInto(into), 3);
    peer.close();
    assertEquals(await conn.readInto(into), null);
  } finally {
    close();
  }
});
