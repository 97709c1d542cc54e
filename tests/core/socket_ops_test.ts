/**
 * The HTTP/1.1 ends' socket reads and writes: straight through the runtime's
 * ops (what this runtime uses) and through `Deno.Conn`'s methods (the
 * fallback), which must answer the same.
 */
import { assertEquals, assertOk, assertRejects, within } from "../helpers/assert.ts";
import {
  ConnOps,
  ResourceOps,
  runtimeCore,
  type SocketOps,
  socketOps,
} from "../../lib/proxy/http1/socket_ops.ts";

async function connectedPair(): Promise<
  { local: Deno.TcpConn; peer: Deno.TcpConn; close(): void }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const local = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const peer = await accepted;
  listener.close();
  return {
    local,
    peer,
    close() {
      for (const c of [local, peer]) {
        try {
          c.close();
        } catch {
          // closed by the test
        }
      }
    },
  };
}

Deno.test("socket ops: this runtime's ops are found and used", async () => {
  const core = runtimeCore();
  assertOk(core !== null, "deno_core's read, write and internalRidSymbol");
  const pair = await connectedPair();
  try {
    assertOk(socketOps(pair.local) instanceof ResourceOps);
    assertOk(socketOps(pair.local, null) instanceof ConnOps);
    // A socket-like object without a resource id gets the public methods.
    assertOk(socketOps({} as Deno.Conn, core) instanceof ConnOps);
  } finally {
    pair.close();
  }
});

for (
  const [name, make] of [
    ["runtime ops", (c: Deno.Conn) => socketOps(c)],
    ["Deno.Conn methods", (c: Deno.Conn) => new ConnOps(c)],
  ] as const
) {
  Deno.test(`socket ops (${name}): bytes both ways, 0 for an empty buffer and at the end, a rejection once closed`, async () => {
    const pair = await connectedPair();
    try {
      const ops: SocketOps = make(pair.local);
      assertEquals(await ops.write(new TextEncoder().encode("ping")), 4);
      const got = new Uint8Array(16);
      const n = await pair.peer.read(got);
      assertEquals(new TextDecoder().decode(got.subarray(0, n!)), "ping");

      await pair.peer.write(new TextEncoder().encode("pong"));
      const into = new Uint8Array(16);
      assertEquals(await ops.read(into), 4);
      assertEquals(new TextDecoder().decode(into.subarray(0, 4)), "pong");

      assertEquals(await within(2_000, ops.read(new Uint8Array(0))), 0);

      pair.peer.close();
      assertEquals(await ops.read(into), 0);

      pair.local.close();
      await assertRejects(() => ops.read(into));
      await assertRejects(() => ops.write(into));
    } finally {
      pair.close();
    }
  });
}
