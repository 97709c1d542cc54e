/**
 * WebSocket proxying through real listeners: a plain one (the gateway's own
 * server, a byte tunnel) and a TLS one with `http2: true` (`Deno.serve`,
 * relayed message by message), in front of a raw upstream that takes what a
 * lenient server would.
 */
import { assertEquals, assertMatch, within } from "../helpers/assert.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { parseResponse, type RawResponse, readUntilClose } from "../helpers/raw.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { startUpstream } from "../helpers/upstream.ts";
import {
  clientFrame,
  FrameReader,
  HANDSHAKE,
  type RawWsUpstream,
  startRawWsUpstream,
  switchAndRead,
} from "../helpers/websocket.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const LISTENERS = ["plain", "h2"] as const;
type ListenerName = typeof LISTENERS[number];

interface Setup {
  g: TestGateway;
  connect(listener: ListenerName): Promise<Deno.Conn>;
  /** Sends `text` on a new connection; the answer up to the close. */
  exchange(listener: ListenerName, text: string): Promise<RawResponse>;
}

/** A gateway with both listeners in front of `up`; `routes` replaces the one catch-all route. */
async function withGateway(
  up: RawWsUpstream | { url: string },
  fn: (s: Setup) => Promise<void>,
  routes = "  - { name: all, match: { path: / }, upstream: up }",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gw-ws-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const g = await startGateway(`listeners:
  - { name: plain, host: 127.0.0.1, port: 0 }
  - { name: h2, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, http2: true } }
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 2 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${routes}
`);
    const caCerts = [await Deno.readTextFile(cert)];
    const connect = (listener: ListenerName): Promise<Deno.Conn> => {
      const port = Number(new URL(g.url(listener)).port);
      return listener === "plain"
        ? Deno.connect({ hostname: "127.0.0.1", port })
        : Deno.connectTls({ hostname: "localhost", port, caCerts, alpnProtocols: ["http/1.1"] });
    };
    const exchange = async (listener: ListenerName, text: string) => {
      const conn = await connect(listener);
      await writeAllTo(conn, new TextEncoder().encode(text));
      return parseResponse((await readUntilClose(conn, 5_000)).text);
    };
    try {
      await fn({ g, connect, exchange });
    } finally {
      await g.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** HANDSHAKE with `Connection: Upgrade, close`, so that a refusal ends the connection. */
const closing = (text: string) => text.replace("Connection: Upgrade", "Connection: Upgrade, close");

Deno.test("websocket: a handshake RFC 6455 calls invalid is refused in the common shape before any upstream connection; an HTTP/1.0 Upgrade is ignored", async () => {
  const up = startRawWsUpstream();
  try {
    await withGateway(up, async ({ exchange }) => {
      const valid = closing(HANDSHAKE("/ws"));
      const invalid: [string, string, RegExp][] = [
        ["POST", valid.replace("GET", "POST"), /a GET, not POST/],
        ["no key", valid.replace(/Sec-WebSocket-Key: .*\r\n/, ""), /Sec-WebSocket-Key/],
        ["short key", valid.replace(/(Sec-WebSocket-Key: ).*/, "$1abc"), /Sec-WebSocket-Key/],
        [
          "two keys",
          valid.replace(/(Sec-WebSocket-Key: .*\r\n)/, "$1$1"),
          /Sec-WebSocket-Key/,
        ],
        ["version 8", valid.replace("Version: 13", "Version: 8"), /Sec-WebSocket-Version/],
        ["no version", valid.replace(/Sec-WebSocket-Version: .*\r\n/, ""), /Sec-WebSocket-Version/],
        [
          "a body",
          valid.replace("\r\n\r\n", "\r\nContent-Length: 5\r\n\r\nhello"),
          /no body/,
        ],
      ];
      for (const listener of LISTENERS) {
        for (const [name, text, message] of invalid) {
          // Before, each of these reached the upstream, which switched: a 101 for a POST,
          // or with the body passed on as the first frames.
          const res = await exchange(listener, text);
          assertEquals(res.status, 400, `${listener}, ${name}: ${res.raw}`);
          // Deno.serve's own server refuses a handshake with a body itself (a bare 400).
          if (listener === "h2" && name === "a body") continue;
          const body = JSON.parse(res.body);
          assertEquals(body.error.code, "bad_request");
          assertMatch(body.error.message, message);
          if (name.startsWith("version") || name === "no version") {
            assertEquals(res.headers.get("sec-websocket-version"), "13");
          }
        }
        assertEquals(up.connections(), 0, `${listener}: an invalid handshake reached the upstream`);
      }
      // An HTTP/1.0 request's Upgrade is not acted on (RFC 9110 §7.8): a plain GET goes upstream.
      const http10 = await exchange("plain", valid.replace("HTTP/1.1", "HTTP/1.0"));
      assertEquals([http10.status, http10.body], [200, "plain"]);
      assertEquals(/\r\nupgrade:/i.test(up.heads.at(-1)!), false);
      // A Connection list naming upgrade among others switches.
      const listed = await exchange(
        "plain",
        valid.replace("Upgrade, close", "keep-alive, Upgrade"),
      );
      assertEquals(listed.status, 101);
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: the 101 carries the request id and the route's response header transforms, as any answer does", async () => {
  const up = startUpstream((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    response.headers.set("x-internal-trace", "secret");
    response.headers.set("x-from-upstream", "kept");
    return response;
  });
  try {
    await withGateway(
      up,
      async ({ connect }) => {
        for (const listener of LISTENERS) {
          const conn = await connect(listener);
          try {
            await writeAllTo(
              conn,
              new TextEncoder().encode(HANDSHAKE("/ws", ["X-Request-Id: ws-1"])),
            );
            const { head, messages } = await switchAndRead(conn, [clientFrame("one")], 1);
            assertMatch(head, /^HTTP\/1\.1 101 /);
            assertEquals(messages, ["echo:one"]);
            const fields = parseResponse(`${head}\r\n\r\n`).headers;
            // The tunnel wrote the upstream's 101 as it came: no request id, the internal field.
            assertEquals(fields.get("x-request-id"), "ws-1", listener);
            assertEquals(fields.get("x-served-by"), "ws", listener);
            assertEquals(fields.get("x-internal-trace"), null, listener);
            assertEquals(fields.get("x-content-type-options"), "nosniff", listener);
            assertEquals(fields.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            if (listener === "plain") assertEquals(fields.get("x-from-upstream"), "kept");
          } finally {
            closeQuietly(conn);
          }
        }
      },
      `  - name: ws
    match: { path: / }
    upstream: up
    transform:
      security_headers: true
      response: { headers: { remove: [X-Internal-Trace], add: { X-Served-By: "\${route.name}" } } }`,
    );
  } finally {
    await up.close();
  }
});

Deno.test("websocket: an upstream that closes as soon as it has switched: its close reaches the client", async () => {
  const up = startUpstream((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => {
      socket.send("first and last");
      socket.close(4002, "later");
    };
    return response;
  });
  try {
    await withGateway(up, async ({ connect }) => {
      for (const listener of LISTENERS) {
        const conn = await connect(listener);
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
          const frames = new FrameReader(conn);
          assertMatch(await frames.head(), /^HTTP\/1\.1 101 /);
          const message = await within(5_000, frames.next());
          assertEquals(message !== "timed out" && decode(message.payload), "first and last");
          // Deno.serve: the close came while the client's side was still opening, was dropped,
          // and the client's connection stayed open with nothing more to come.
          const close = await within(5_000, frames.next());
          assertEquals(close !== "timed out" && close.opcode, 0x8, listener);
          assertEquals(close !== "timed out" && closeOf(close.payload), [4002, "later"]);
        } finally {
          closeQuietly(conn);
        }
      }
    });
  } finally {
    await up.close();
  }
});

const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const closeOf = (
  p: Uint8Array,
) => [new DataView(p.buffer, p.byteOffset).getUint16(0), decode(p.subarray(2))];
