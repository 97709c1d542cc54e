/**
 * WebSocket upgrades on TLS listeners, served by the gateway's own server (a
 * byte tunnel) and with `http2: true` by `Deno.serve` (relayed message by
 * message through the runtime's WebSocket): the accept for the client's key,
 * messages both ways, and the listener serving on afterwards.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { assertEchoes } from "../helpers/websocket.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

for (const [server, setting] of [["own server", ""], ["Deno.serve", ", http2: true"]]) {
  Deno.test(`TLS listener (${server}): a WebSocket is relayed, and the listener serves on`, () =>
    relaysAndServesOn(setting!));
}

async function relaysAndServesOn(setting: string) {
  const up = startUpstream((req) => {
    if (req.headers.get("upgrade") !== "websocket") return new Response("plain");
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
  const dir = await Deno.makeTempDir({ prefix: "gw-ws-tls-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const g = await startGateway(`listeners:
  - { name: tls, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}${setting} } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
    const caCerts = [await Deno.readTextFile(cert)];
    const port = Number(new URL(g.url("tls")).port);
    try {
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port,
        caCerts,
        alpnProtocols: ["http/1.1"],
      });
      try {
        await assertEchoes(conn);
      } finally {
        closeQuietly(conn);
      }
      // Reading the upgraded request's body threw in the listener, and the runtime's server
      // then closed the whole listener: nothing after the first WebSocket was served.
      const client = Deno.createHttpClient({ caCerts });
      try {
        for (let i = 0; i < 3; i++) {
          const res = await fetch(`https://localhost:${port}/after`, { client });
          assertEquals([res.status, await res.text()], [200, "plain"]);
        }
      } finally {
        client.close();
      }
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("TLS listener (Deno.serve): an Upgrade the Connection field does not name is a plain GET; a handshake without a key a 400 that opens no upstream WebSocket", async () => {
  const up = startUpstream((req) => {
    if (req.headers.get("upgrade") === null) return new Response("plain");
    return Deno.upgradeWebSocket(req).response;
  });
  const dir = await Deno.makeTempDir({ prefix: "gw-ws-tls-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const g = await startGateway(`listeners:
  - { name: tls, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, http2: true } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
    const caCerts = [await Deno.readTextFile(cert)];
    const port = Number(new URL(g.url("tls")).port);
    const exchange = async (lines: string[]) => {
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port,
        caCerts,
        alpnProtocols: ["http/1.1"],
      });
      await writeAllTo(conn, new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
      return parseResponse((await readUntilClose(conn, 5_000)).text);
    };
    try {
      // Both were a 500 after a WebSocket to the upstream had opened, and that one stayed open.
      const plain = await exchange([
        "GET /ws HTTP/1.1",
        "Host: localhost",
        "Connection: close",
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
      ]);
      assertEquals([plain.status, plain.body], [200, "plain"]);
      assertEquals(up.received[0]!.headers.get("upgrade"), null);

      const keyless = await exchange([
        "GET /ws HTTP/1.1",
        "Host: localhost",
        "Connection: Upgrade, close",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
      ]);
      assertEquals(keyless.status, 400);
      assertMatch(keyless.body, /"code":"bad_request"/);
      // It used to open the upstream's WebSocket first, then close it.
      assertEquals(up.received.length, 1);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
