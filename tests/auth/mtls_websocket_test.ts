/**
 * WebSocket upgrades on an mTLS listener (served by `node:https`): the client
 * certificate is checked as for any request, then the gateway joins the
 * client's socket to the upstream's. A raw TLS client speaks the handshake and
 * the frames itself (Deno's WebSocket cannot present a client certificate).
 */
import { assertEquals, assertMatch, within } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, FIXTURES));

const HANDSHAKE = (path: string) =>
  [
    `GET ${path} HTTP/1.1`,
    "Host: localhost",
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");

/** A client's text frame (masked, under 126 bytes). */
function clientFrame(text: string, opcode = 0x1): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const mask = [0x12, 0x34, 0x56, 0x78];
  return new Uint8Array([
    0x80 | opcode,
    0x80 | payload.length,
    ...mask,
    ...payload.map((b, i) => b ^ mask[i % 4]!),
  ]);
}

/** Reads from `conn` until `buf` holds `n` bytes past `have`. */
async function readAtLeast(conn: Deno.Conn, have: Uint8Array, n: number): Promise<Uint8Array> {
  let out: Uint8Array = have;
  const chunk = new Uint8Array(4096);
  while (out.length < n) {
    const got = await conn.read(chunk);
    if (got === null) throw new Error(`connection ended after ${out.length} of ${n} bytes`);
    out = new Uint8Array([...out, ...chunk.subarray(0, got)]);
  }
  return out;
}

/**
 * The 101 head, then the server's (unmasked, short) text frames, `count` of
 * them, after sending `send`; throws if that takes over 5 s.
 */
async function switchAndRead(conn: Deno.Conn, send: Uint8Array[], count: number) {
  const got = await within(5_000, exchangeFrames(conn, send, count));
  if (got === "timed out") throw new Error("no switch, or no answer to the frames, within 5 s");
  return got;
}

async function exchangeFrames(conn: Deno.Conn, send: Uint8Array[], count: number) {
  let buf: Uint8Array = new Uint8Array(0);
  let headEnd = -1;
  while (headEnd < 0) {
    buf = await readAtLeast(conn, buf, buf.length + 1);
    headEnd = new TextDecoder().decode(buf).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(buf.subarray(0, headEnd));
  for (const frame of send) await writeAllTo(conn, frame);
  let rest: Uint8Array = buf.subarray(headEnd + 4);
  const messages: string[] = [];
  while (messages.length < count) {
    rest = await readAtLeast(conn, rest, 2);
    const len = rest[1]! & 0x7f;
    rest = await readAtLeast(conn, rest, 2 + len);
    messages.push(new TextDecoder().decode(rest.subarray(2, 2 + len)));
    rest = rest.subarray(2 + len);
  }
  return { head, messages };
}

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
      await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
      const { head, messages } = await switchAndRead(
        conn,
        [clientFrame("one"), clientFrame("two")],
        2,
      );
      assertMatch(head, /^HTTP\/1\.1 101 /);
      assertMatch(head, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
      assertEquals(messages, ["echo:one", "echo:two"]);
      // A close frame from the client: the upstream answers it and the relay ends.
      await writeAllTo(conn, clientFrame("", 0x8));
      const { ms } = await readUntilClose(conn, 5_000);
      assertEquals(ms < 5_000, true, "the relay ended after the close handshake");
    } finally {
      closeQuietly(conn);
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

    // An upgrade the upstream declines: its answer, body included.
    const declinedConn = await connect(true);
    await writeAllTo(declinedConn, new TextEncoder().encode(HANDSHAKE("/plain")));
    const declined = parseResponse((await readUntilClose(declinedConn, 5_000)).text);
    assertEquals([declined.status, declined.body], [403, "no sockets here"]);

    // A shutdown does not wait for an open WebSocket, as on plain listeners (its relay
    // goes on until either side closes, or the process ends).
    const open = await connect(true);
    try {
      await writeAllTo(open, new TextEncoder().encode(HANDSHAKE("/ws")));
      assertEquals((await switchAndRead(open, [clientFrame("still")], 1)).messages, ["echo:still"]);
      assertEquals(await within(3_000, stop().then(() => "stopped")), "stopped");
    } finally {
      closeQuietly(open);
    }
  } finally {
    await stop();
    await up.close();
  }
});
