/**
 * WebSocket upgrades on an mTLS listener (served by `node:https`): the client
 * certificate is checked as for any request, then the gateway joins the
 * client's socket to the upstream's. A raw TLS client speaks the handshake and
 * the frames itself (Deno's WebSocket cannot present a client certificate).
 */
import { assertEquals, within } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";
import {
  assertEchoes,
  clientFrame,
  FrameReader,
  HANDSHAKE,
  startRawWsUpstream,
  switchAndRead,
  wsFrame,
} from "../helpers/websocket.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, FIXTURES));

Deno.test("mtls listener: a WebSocket upgrade is checked like any request, then relayed both ways", async () => {
  const up = startUpstream((req) => {
    if (new URL(req.url).pathname !== "/ws") {
      return new Response("no sockets here", { status: 403 });
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
  const [ca, serverCrt, serverKey, clientCrt, clientKey] = await Promise.all(
    ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"].map(read),
  );
  const g = await startGateway(
    `listeners:
  - name: partners
    host: 127.0.0.1
    port: 0
    tls: { cert: server.crt, key: server.key, client_ca: ca.crt, client_cert: required }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  certs: { kind: mtls }
routes:
  - { name: ws, match: { path: / }, upstream: up, auth: [certs] }
`,
    { files: { "ca.crt": ca!, "server.crt": serverCrt!, "server.key": serverKey! } },
  );
  let stopped: Promise<void> | null = null;
  const stop = () => stopped ??= g.close();
  const port = Number(new URL(g.url("partners")).port);
  const connect = (withCert: boolean) =>
    Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [ca!],
      ...(withCert ? { cert: clientCrt!, key: clientKey! } : {}),
    });
  try {
    // With a trusted certificate: switched, and messages go both ways.
    const conn = await connect(true);
    try {
      await assertEchoes(conn);
      // A close frame from the client: the upstream answers it and the relay ends.
      await writeAllTo(conn, clientFrame("", 0x8));
      const { ms } = await readUntilClose(conn, 5_000);
      assertEquals(ms < 5_000, true, "the relay ended after the close handshake");
    } finally {
      closeQuietly(conn);
    }

    // A client that half-closes after its close frame still gets what the upstream sends.
    const halfClosing = await connect(true);
    try {
      await writeAllTo(halfClosing, new TextEncoder().encode(HANDSHAKE("/ws")));
      const frames = new FrameReader(halfClosing);
      await frames.head();
      await writeAllTo(halfClosing, clientFrame("last words"));
      await writeAllTo(halfClosing, clientFrame("", 0x8));
      await halfClosing.closeWrite();
      const rest = await within(5_000, frames.rest());
      assertEquals(rest !== "timed out" && rest.map((f) => f.opcode), [0x1, 0x8]);
    } finally {
      closeQuietly(halfClosing);
    }

    // Without a certificate: the refusal in the common error shape, nothing upstream.
    const before = up.received.length;
    const refused = await connect(false);
    await writeAllTo(refused, new TextEncoder().encode(HANDSHAKE("/ws")));
    const answer = parseResponse((await readUntilClose(refused, 5_000)).text);
    assertEquals(answer.status, 401);
    assertEquals(JSON.parse(answer.body).error.code, "invalid_client_certificate");
    assertEquals(up.received.length, before);

    // A handshake with a body: node leaves it on the socket, so it is refused.
    const withBody = await connect(true);
    await writeAllTo(
      withBody,
      new TextEncoder().encode(
        HANDSHAKE("/ws").replace("\r\n\r\n", "\r\nContent-Length: 5\r\n\r\nhello"),
      ),
    );
    assertEquals(parseResponse((await readUntilClose(withBody, 5_000)).text).status, 400);

    // An HTTP/1.0 request's Upgrade is ignored (RFC 9110 §7.8): a plain GET, without it.
    const http10 = await connect(true);
    await writeAllTo(http10, new TextEncoder().encode(HANDSHAKE("/plain").replace("1.1", "1.0")));
    const plain = parseResponse((await readUntilClose(http10, 5_000)).text);
    assertEquals([plain.status, plain.body], [403, "no sockets here"]);
    assertEquals(up.received.at(-1)!.headers.get("upgrade"), null);

    // An upgrade the upstream declines: its answer, body included.
    const declinedConn = await connect(true);
    await writeAllTo(declinedConn, new TextEncoder().encode(HANDSHAKE("/plain")));
    const declined = parseResponse((await readUntilClose(declinedConn, 5_000)).text);
    assertEquals([declined.status, declined.body], [403, "no sockets here"]);

    // A shutdown does not wait for an open WebSocket but ends it, as on plain listeners.
    const open = await connect(true);
    try {
      await writeAllTo(open, new TextEncoder().encode(HANDSHAKE("/ws", ["X-Request-Id: ws-7"])));
      const { head, messages } = await switchAndRead(open, [clientFrame("still")], 1);
      assertEquals(messages, ["echo:still"]);
      // The 101 is the pipeline's answer, request id included, as on plain listeners.
      assertEquals(parseResponse(`${head}\r\n\r\n`).headers.get("x-request-id"), "ws-7");
      // Well within the 30 s drain, with seconds of margin for a loaded machine.
      assertEquals(await within(15_000, stop().then(() => "stopped")), "stopped");
      assertEquals((await readUntilClose(open, 15_000)).ms < 15_000, true, "the relay ended");
    } finally {
      closeQuietly(open);
    }
  } finally {
    await stop();
    await up.close();
  }
});

Deno.test("mtls listener: a WebSocket client that sends faster than its upstream reads is cut off, not buffered without bound", async () => {
  const stopped = Promise.withResolvers<void>();
  const up = startRawWsUpstream(() => stopped.promise); // switches, then reads nothing
  const [ca, serverCrt, serverKey, clientCrt, clientKey] = await Promise.all(
    ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"].map(read),
  );
  const g = await startGateway(
    `listeners:
  - name: partners
    host: 127.0.0.1
    port: 0
    tls: { cert: server.crt, key: server.key, client_ca: ca.crt, client_cert: required }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: ws, match: { path: / }, upstream: up }
`,
    { files: { "ca.crt": ca!, "server.crt": serverCrt!, "server.key": serverKey! } },
  );
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: Number(new URL(g.url("partners")).port),
    caCerts: [ca!],
    cert: clientCrt!,
    key: clientKey!,
  });
  try {
    await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/sink")));
    await new FrameReader(conn).head();
    let wrote = 0;
    const frame = wsFrame(new Uint8Array(64 * 1024));
    const sending = (async () => {
      while (wrote < 256 * MIB) {
        await writeAllTo(conn, frame);
        wrote += frame.length;
      }
    })().catch(() => {}); // the gateway ended the session
    // The runtime's node:tls reads a paused socket all the same: all 256 MiB went in.
    let last = -1;
    for (let still = 0; still < 10 && wrote <= 32 * MIB;) {
      await new Promise((r) => setTimeout(r, 100));
      still = wrote === last ? still + 1 : 0;
      last = wrote;
    }
    // 16 MiB held by the relay, the rest in the sockets' buffers (20 MiB measured). Counted
    // by a timer instead, a loopback client had 72-85 MiB out before the first look.
    assertEquals(wrote < 32 * MIB, true, `the client got ${wrote >> 20} MiB out`);
    closeQuietly(conn);
    await sending;
  } finally {
    closeQuietly(conn);
    await g.close();
    stopped.resolve();
    await up.close();
  }
});

const MIB = 1024 * 1024;
