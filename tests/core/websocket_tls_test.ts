/**
 * WebSocket upgrades on TLS listeners, served by the gateway's own server (a
 * byte tunnel) and with `http2: true` by `Deno.serve` (relayed message by
 * message through the runtime's WebSocket): the accept for the client's key,
 * messages both ways, and the listener serving on afterwards.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { assertEchoes } from "../helpers/websocket.ts";
import { closeQuietly } from "../../lib/proxy/http1/socket_io.ts";

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
