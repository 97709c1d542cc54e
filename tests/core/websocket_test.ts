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
import { closedPort, startUpstream } from "../helpers/upstream.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import {
  clientFrame,
  closePayload,
  FrameReader,
  HANDSHAKE,
  type RawWsUpstream,
  startEchoWsUpstream,
  startRawWsUpstream,
  switchAndRead,
  wsFrame,
} from "../helpers/websocket.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const LISTENERS = ["plain", "h2"] as const;
type ListenerName = typeof LISTENERS[number];

interface Setup {
  g: TestGateway;
  connect(listener: ListenerName): Promise<Deno.Conn>;
  /** Sends `text` on a new connection; the answer up to the close. */
  exchange(listener: ListenerName, text: string): Promise<RawResponse>;
  /** Sends `text` on a new connection; the answer's head (a 101's), then closes. */
  headOf(listener: ListenerName, text: string): Promise<RawResponse>;
}

/**
 * A gateway with both listeners in front of `up`: `routes` replaces the one
 * catch-all route, `upstream` adds settings to the upstream's.
 */
async function withGateway(
  up: RawWsUpstream | { url: string },
  fn: (s: Setup) => Promise<void>,
  o: {
    routes?: string;
    upstream?: string;
    stdout?: (text: string) => void;
    server?: string;
    /** More keys of `observe:` (`tracing: ...`). */
    observe?: string;
  } = {},
): Promise<void> {
  const routes = o.routes ?? "  - { name: all, match: { path: / }, upstream: up }";
  const dir = await Deno.makeTempDir({ prefix: "gw-ws-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const g = await startGateway(
      `listeners:
  - { name: plain, host: 127.0.0.1, port: 0 }
  - { name: h2, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, http2: true } }
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 2${o.server ? `, ${o.server}` : ""} }
observe: {${o.stdout ? " access_log: { enabled: true, path: stdout, flush_ms: 10 }," : ""} ${
        o.observe ?? ""
      } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ]${o.upstream ? `, ${o.upstream}` : ""} }
routes:
${routes}
`,
      o.stdout ? { stdout: o.stdout } : {},
    );
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
    const headOf = async (listener: ListenerName, text: string) => {
      const conn = await connect(listener);
      try {
        await writeAllTo(conn, new TextEncoder().encode(text));
        return parseResponse(`${await new FrameReader(conn).head()}\r\n\r\n`);
      } finally {
        closeQuietly(conn);
      }
    };
    try {
      await fn({ g, connect, exchange, headOf });
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
            assertEquals(fields.get("x-from-upstream"), "kept", listener);
          } finally {
            closeQuietly(conn);
          }
        }
      },
      {
        routes: `  - name: ws
    match: { path: / }
    upstream: up
    transform:
      security_headers: true
      response: { headers: { remove: [X-Internal-Trace], add: { X-Served-By: "\${route.name}" } } }`,
      },
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

Deno.test("websocket: the upstream gets the handshake and the client its answer alike on both listeners (Host, User-Agent, a refusal, the 101's fields)", async () => {
  const seen: Record<string, string>[] = [];
  const up = startUpstream((req) => {
    seen.push(Object.fromEntries(req.headers));
    if (new URL(req.url).pathname === "/declined") {
      return new Response("not for you", { status: 403, headers: { "x-why": "declined" } });
    }
    const { response } = Deno.upgradeWebSocket(req);
    response.headers.set("set-cookie", "affinity=a1; Path=/");
    return response;
  });
  try {
    await withGateway(
      up,
      async ({ exchange, headOf }) => {
        for (const listener of LISTENERS) {
          seen.length = 0;
          const extra = ["User-Agent: app/1.0", "Sec-WebSocket-Extensions: permessage-deflate"];
          const switched = await headOf(listener, HANDSHAKE("/ws", extra));
          assertEquals(switched.status, 101, listener);
          // Deno.serve: the runtime's WebSocket client made the handshake, with its own Host
          // (preserve_host ignored) and User-Agent ("Deno/2.9.6, app/1.0"), and dropped these.
          assertEquals(switched.headers.get("set-cookie"), "affinity=a1; Path=/", listener);
          assertEquals(seen[0]!["host"], "localhost", listener);
          assertEquals(seen[0]!["user-agent"], "app/1.0", listener);
          // The byte relay passes an extension offer on; the message relay, which speaks
          // no extension, offers none.
          assertEquals(
            seen[0]!["sec-websocket-extensions"],
            listener === "plain" ? "permessage-deflate" : undefined,
          );
          assertEquals(switched.headers.get("sec-websocket-extensions"), null);
          // A refusal is the upstream's answer (it was a 502 on Deno.serve).
          const declined = await exchange(listener, closing(HANDSHAKE("/declined")));
          assertEquals(
            [declined.status, declined.body, declined.headers.get("x-why")],
            [403, "not for you", "declined"],
            listener,
          );
        }
      },
      { upstream: "preserve_host: true" },
    );
  } finally {
    await up.close();
  }
});

Deno.test("websocket: close codes and reasons pass both ways on both listeners", async () => {
  const closes: string[] = [];
  const up = startUpstream((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.close(Number(e.data), `upstream ${e.data}`);
    socket.onclose = (e) => closes.push(`${e.code} ${e.reason}`);
    return response;
  });
  try {
    await withGateway(up, async ({ connect }) => {
      for (const listener of LISTENERS) {
        // The client closes: 1001 as a browser leaving the page, and an application's code.
        for (const code of [1001, 1008, 4000]) {
          const conn = await connect(listener);
          try {
            await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
            const frames = new FrameReader(conn);
            await frames.head();
            await writeAllTo(conn, wsFrame(closePayload(code, "client says"), { opcode: 0x8 }));
            const answer = await within(5_000, frames.next());
            assertEquals(answer !== "timed out" && answer.opcode, 0x8);
          } finally {
            closeQuietly(conn);
          }
          // Deno.serve: the runtime's WebSocket client cannot send 1001-1014, so the upstream
          // got a close without a code (1005).
          assertEquals(await within(5_000, until(() => closes.shift())), `${code} client says`);
        }
        // The upstream closes.
        for (const code of [1008, 1011, 4001]) {
          const conn = await connect(listener);
          try {
            await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
            const frames = new FrameReader(conn);
            await frames.head();
            await writeAllTo(conn, clientFrame(String(code)));
            const close = await within(5_000, frames.next());
            assertEquals(close !== "timed out" && closeOf(close.payload), [
              code,
              `upstream ${code}`,
            ]);
            await writeAllTo(conn, wsFrame(closePayload(code), { opcode: 0x8 }));
          } finally {
            closeQuietly(conn);
          }
          await within(5_000, until(() => closes.shift()));
        }
      }
    });
  } finally {
    await up.close();
  }
});

/** What `f` returns once it is defined, checked every 10 ms. */
async function until<T>(f: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("websocket: fragmented, binary, large and control frames pass on both listeners; the upstream's pings are answered", async () => {
  const up = startUpstream((req) => {
    // On /pinging: pings every 2 s, and a close when one goes unanswered for 2 s.
    const pinging = new URL(req.url).pathname === "/pinging";
    const { socket, response } = Deno.upgradeWebSocket(req, pinging ? { idleTimeout: 2 } : {});
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      const data = e.data as string | ArrayBuffer;
      socket.send(typeof data === "string" ? `echo:${data.length}:${data.slice(0, 9)}` : data);
    };
    return response;
  });
  /** A session on `path`: its frames, a pong for every ping (the byte relay passes them on). */
  const open = async (conn: Deno.Conn, path: string) => {
    await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE(path)));
    const frames = new FrameReader(conn);
    await frames.head();
    return async () => {
      while (true) {
        const f = await frames.next();
        if (f.opcode !== 0x9) return f;
        await writeAllTo(conn, wsFrame(f.payload, { opcode: 0xa }));
      }
    };
  };
  try {
    await withGateway(up, async ({ connect }) => {
      for (const listener of LISTENERS) {
        const conn = await connect(listener);
        try {
          const next = await open(conn, "/ws");
          const text = (s: string, fin: boolean, opcode: number) =>
            wsFrame(new TextEncoder().encode(s), { opcode, fin });
          // A text message in three fragments, a ping between two of them.
          await writeAllTo(conn, text("frag", false, 0x1));
          await writeAllTo(conn, text("ment", false, 0x0));
          await writeAllTo(conn, wsFrame(new TextEncoder().encode("ping?"), { opcode: 0x9 }));
          await writeAllTo(conn, text("ed", true, 0x0));
          const pong = await next();
          assertEquals([pong.opcode, decode(pong.payload)], [0xa, "ping?"]);
          assertEquals(decode((await next()).payload), "echo:10:fragmente");
          // 8 MiB of binary, echoed whole; 3 MiB of text.
          const binary = new Uint8Array(8 * 1024 * 1024).map((_, i) => i % 251);
          await writeAllTo(conn, wsFrame(binary));
          const back = await next();
          assertEquals(back.opcode, 0x2);
          assertEquals(back.payload.length, binary.length);
          assertEquals(back.payload.every((b, i) => b === binary[i]), true);
          const long = wsFrame(new TextEncoder().encode("x".repeat(3 << 20)), { opcode: 0x1 });
          await writeAllTo(conn, long);
          assertEquals(decode((await next()).payload), `echo:${3 << 20}:xxxxxxxxx`);
        } finally {
          closeQuietly(conn);
        }
      }
      // Past the upstream's idle timeout, twice over: its pings were answered (by the client
      // through the byte relay, by the gateway in the message relay), so it kept the session.
      await Promise.all(LISTENERS.map(async (listener) => {
        const conn = await connect(listener);
        try {
          const next = await open(conn, "/pinging");
          const answer = next();
          await new Promise((r) => setTimeout(r, 4_500));
          await writeAllTo(conn, clientFrame("still"));
          assertEquals(decode((await answer).payload), "echo:5:still", listener);
        } finally {
          closeQuietly(conn);
        }
      }));
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket (Deno.serve listener): an upstream that breaks the protocol gets its close code (1002, 1009, 1007), the client 1011", async () => {
  const upstreamGot: number[] = [];
  const bad: Record<string, Uint8Array> = {
    // A masked frame: only clients mask (RFC 6455 §5.1).
    "/masked": wsFrame(new TextEncoder().encode("masked")),
    // A head announcing 65 MiB, past what the relay takes: refused before any is read.
    "/huge": new Uint8Array([0x82, 127, 0, 0, 0, 0, 0x04, 0x10, 0, 0]),
    "/not-utf8": wsFrame(new Uint8Array([0xc3, 0x28]), { opcode: 0x1, masked: false }),
  };
  const up = startRawWsUpstream(async (conn, frames) => {
    await writeAllTo(conn, bad[up.heads.at(-1)!.split(" ")[1]!]!);
    upstreamGot.push(closeOf((await frames.next()).payload)[0] as number);
  });
  try {
    await withGateway(up, async ({ connect }) => {
      for (const path of Object.keys(bad)) {
        const conn = await connect("h2");
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE(path)));
          const frames = new FrameReader(conn);
          await frames.head();
          const close = await frames.next();
          assertEquals([close.opcode, closeOf(close.payload)[0]], [0x8, 1011], path);
        } finally {
          closeQuietly(conn);
        }
      }
      await within(5_000, until(() => upstreamGot.length === 3 || undefined));
      assertEquals(upstreamGot, [1002, 1009, 1007]);
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket (Deno.serve listener): an upstream's message in empty fragments is relayed whole; past 65,536 fragments it gets 1009", async () => {
  const upstreamGot: number[] = [];
  const text = (t: string, fin: boolean, opcode = 0x0) =>
    wsFrame(new TextEncoder().encode(t), { opcode, fin, masked: false });
  /** `a`, then `n` empty continuations, then `b`: one message. */
  const fragmented = (n: number) => {
    const empty = text("", false);
    const out = new Uint8Array(empty.length * n + 6);
    out.set(text("a", false, 0x1), 0);
    for (let i = 0; i < n; i++) out.set(empty, 3 + i * empty.length);
    out.set(text("b", true), 3 + n * empty.length);
    return out;
  };
  const up = startRawWsUpstream(async (conn, frames) => {
    const many = up.heads.at(-1)!.split(" ")[1] === "/many";
    await writeAllTo(conn, fragmented(many ? 70_000 : 10_000));
    if (many) upstreamGot.push(closeOf((await frames.next()).payload)[0] as number);
    else await frames.next();
  });
  try {
    await withGateway(up, async ({ connect }) => {
      for (const [path, expect] of [["/few", "ab"], ["/many", 1011]] as const) {
        const conn = await connect("h2");
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE(path)));
          const frames = new FrameReader(conn);
          await frames.head();
          const got = await frames.next();
          if (typeof expect === "string") {
            assertEquals([got.opcode, new TextDecoder().decode(got.payload)], [0x1, expect]);
          } else {
            assertEquals([got.opcode, closeOf(got.payload)[0]], [0x8, expect]);
          }
        } finally {
          closeQuietly(conn);
        }
      }
      await within(5_000, until(() => upstreamGot.length === 1 || undefined));
      assertEquals(upstreamGot, [1009]);
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: a side that stops reading holds the other back: what the relay buffers is bounded both ways on both listeners", async () => {
  const ATTEMPT = 256 * MIB;
  const BOUND = 64 * MIB;
  let upstreamWrote = 0;
  const stopped = Promise.withResolvers<void>();
  const up = startRawWsUpstream(async (conn) => {
    if (!up.heads.at(-1)!.startsWith("GET /flood")) return await stopped.promise; // reads nothing
    const frame = wsFrame(new Uint8Array(64 * 1024), { masked: false });
    while (upstreamWrote < ATTEMPT) {
      await writeAllTo(conn, frame);
      upstreamWrote += frame.length;
    }
  });
  try {
    await withGateway(up, async ({ connect }) => {
      for (const listener of LISTENERS) {
        // The upstream sends; the client reads nothing.
        upstreamWrote = 0;
        const reader = await connect(listener);
        try {
          await writeAllTo(reader, new TextEncoder().encode(HANDSHAKE("/flood")));
          await new FrameReader(reader).head();
          const held = await settled(() => upstreamWrote, BOUND);
          // Deno.serve: the relay read all 256 MiB into the client's send queue.
          assertEquals(held < BOUND, true, `${listener}: the upstream got ${held >> 20} MiB out`);
        } finally {
          closeQuietly(reader);
        }
        // The client sends; the upstream reads nothing.
        const writer = await connect(listener);
        let clientWrote = 0;
        try {
          await writeAllTo(writer, new TextEncoder().encode(HANDSHAKE("/sink")));
          await new FrameReader(writer).head();
          const frame = wsFrame(new Uint8Array(64 * 1024));
          const sending = (async () => {
            while (clientWrote < ATTEMPT) {
              await writeAllTo(writer, frame);
              clientWrote += frame.length;
            }
          })().catch(() => {}); // the gateway ended the session
          const held = await settled(() => clientWrote, BOUND);
          // Deno.serve: the relay queued all 256 MiB for the upstream.
          assertEquals(held < BOUND, true, `${listener}: the client got ${held >> 20} MiB out`);
          closeQuietly(writer);
          await sending;
        } finally {
          closeQuietly(writer);
        }
      }
    });
  } finally {
    stopped.resolve();
    await up.close();
  }
});

const MIB = 1024 * 1024;

/** `count()` once it has stopped growing for a second, or has passed `limit`. */
async function settled(count: () => number, limit: number): Promise<number> {
  let last = -1;
  let still = 0;
  while (count() <= limit && still < 10) {
    await new Promise((r) => setTimeout(r, 100));
    still = count() === last ? still + 1 : 0;
    last = count();
  }
  return count();
}

Deno.test("websocket: a session is one request until it ends: in flight while open, then its access-log line and metrics with its duration and the bytes relayed", async () => {
  const up = startUpstream((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send("x".repeat(1000) + e.data);
    return response;
  });
  let log = "";
  try {
    await withGateway(up, async ({ g, connect }) => {
      const metric = async (name: string) => {
        const text = await (await fetch(`${g.admin}/metrics`)).text();
        const line = text.split("\n").find((l) => l.startsWith(name));
        return line === undefined ? 0 : Number(line.split(" ").at(-1));
      };
      for (const listener of LISTENERS) {
        const before = { in: await metric("gateway_request_bytes_total"), log: log.length };
        const conn = await connect(listener);
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
          const frames = new FrameReader(conn);
          await frames.head();
          for (let i = 0; i < 3; i++) {
            await writeAllTo(conn, clientFrame("y".repeat(100)));
            assertEquals((await frames.next()).payload.length, 1100);
          }
          // The session is open: it was recorded, and let go of, at its 101.
          assertEquals(await metric("gateway_requests_in_flight"), 1, listener);
          await new Promise((r) => setTimeout(r, 300));
          assertEquals(log.length, before.log, `${listener}: logged before the session ended`);
          await writeAllTo(conn, wsFrame(closePayload(1000), { opcode: 0x8 }));
          await frames.rest();
        } finally {
          closeQuietly(conn);
        }
        await within(5_000, until(() => log.length > before.log || undefined));
        const line = JSON.parse(log.slice(before.log).trim().split("\n").at(-1)!);
        assertEquals([line.status, line.listener], [101, listener]);
        // Payloads at least: the byte relay counts frames as they were on the wire.
        assertEquals(line.bytes_in >= 300 && line.bytes_in < 400, true, `${listener}: ${log}`);
        assertEquals(line.bytes_out >= 3300 && line.bytes_out < 3400, true, `${listener}: ${log}`);
        assertEquals(line.latency_ms >= 300, true, `${listener}: ${line.latency_ms} ms`);
        assertEquals(await metric("gateway_requests_in_flight"), 0);
        assertEquals(await metric("gateway_request_bytes_total") - before.in, line.bytes_in);
      }
    }, { stdout: (text) => log += text });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: a shutdown does not wait for open sessions but ends them, and records them", async () => {
  let upstreamClosed = 0;
  const up = startEchoWsUpstream((socket) => socket.onclose = () => upstreamClosed++);
  let log = "";
  try {
    await withGateway(up, async ({ g, connect }) => {
      const sessions = await Promise.all(LISTENERS.map(async (listener) => {
        const conn = await connect(listener);
        await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
        const frames = new FrameReader(conn);
        await frames.head();
        await writeAllTo(conn, clientFrame("hi"));
        assertEquals(decode((await frames.next()).payload), "echo:hi");
        return { conn, frames };
      }));
      try {
        // The byte relay's sessions went on after the gateway had stopped, their connections
        // open and, since sessions are recorded at their end, never logged.
        assertEquals(await within(10_000, g.gw.shutdown().then(() => "stopped")), "stopped");
        const [plain, h2] = await Promise.all(sessions.map((s) => within(5_000, s.frames.rest())));
        assertEquals(plain, [], "plain: the connection ends (no close frame mid-stream)");
        assertEquals(Array.isArray(h2) && closeOf(h2.at(-1)!.payload)[0], 1001);
        await within(5_000, until(() => upstreamClosed === 2 || undefined));
        const lines = log.trim().split("\n").map((l) => JSON.parse(l));
        assertEquals(lines.map((l) => [l.listener, l.status]).sort(), [["h2", 101], [
          "plain",
          101,
        ]]);
      } finally {
        for (const { conn } of sessions) closeQuietly(conn);
      }
    }, { stdout: (text) => log += text });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: routing, rewriting, forwarded fields, subprotocols and route policies apply to an upgrade as to any request, on both listeners", async () => {
  const seen: { url: string; fields: Record<string, string> }[] = [];
  const up = startUpstream((req) => {
    const u = new URL(req.url);
    seen.push({ url: u.pathname + u.search, fields: Object.fromEntries(req.headers) });
    const offered = req.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim());
    return Deno.upgradeWebSocket(req, offered ? { protocol: offered.at(-1)! } : {}).response;
  });
  const routes = `  - name: team-b
    match: { path: /chat, headers: { X-Team: b } }
    upstream: up
    rewrite: { prefix: /team-b/socket }
    transform: { request: { headers: { set: { X-Added: "yes" }, remove: [Cookie] } } }
  - { name: secured, match: { path: /secured }, upstream: up, auth: [keys] }
  - { name: denied, match: { path: /denied }, upstream: up, ip: { deny: [127.0.0.0/8] } }
  - name: limited
    match: { path: /limited }
    upstream: up
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1m }
  - { name: all, match: { path: / }, upstream: up }
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: c1, api_keys: ["k1"] }`;
  const trace = "0af7651916cd43dd8448eb211c80319c";
  try {
    await withGateway(up, async ({ exchange, headOf }) => {
      for (const listener of LISTENERS) {
        seen.length = 0;
        const switched = await headOf(
          listener,
          HANDSHAKE("/chat/room1?x=1", [
            "X-Team: b",
            "Cookie: sid=1",
            "Keep-Alive: timeout=5",
            "X-Forwarded-For: 6.6.6.6",
            `Traceparent: 00-${trace}-b7ad6b7169203331-01`,
            "Sec-WebSocket-Protocol: a, b",
          ]),
        );
        assertEquals(switched.status, 101, listener);
        assertEquals(switched.headers.get("sec-websocket-protocol"), "b", listener);
        const { url, fields } = seen[0]!;
        assertEquals(url, "/team-b/socket/room1?x=1", listener);
        assertEquals(fields["sec-websocket-protocol"], "a, b");
        assertEquals(fields["x-forwarded-for"], "127.0.0.1");
        assertEquals(fields["x-forwarded-proto"], listener === "plain" ? "http" : "https");
        assertEquals(fields["x-forwarded-host"], "localhost");
        assertEquals(fields["via"], "1.1 gateway");
        assertMatch(fields["traceparent"]!, new RegExp(`^00-${trace}-(?!b7ad6b7169203331)`));
        assertEquals([fields["x-added"], fields["cookie"], fields["keep-alive"]], [
          "yes",
          undefined,
          undefined,
        ]);
        // Without the header the route asks for, another route: no rewrite.
        await headOf(listener, HANDSHAKE("/chat/room1"));
        assertEquals(seen[1]!.url, "/chat/room1");

        // Refused before any upstream connection, in the common shape.
        const before = seen.length;
        const refusals: [string, number, string][] = [
          ["/secured", 401, "missing_credentials"],
          ["/denied", 403, "ip_denied"],
        ];
        if (listener === "plain") {
          assertEquals((await headOf(listener, HANDSHAKE("/limited"))).status, 101);
        }
        refusals.push(["/limited", 429, "rate_limited"]);
        for (const [path, status, code] of refusals) {
          const res = await exchange(listener, closing(HANDSHAKE(path)));
          assertEquals([res.status, JSON.parse(res.body).error.code], [status, code], listener);
        }
        assertEquals(seen.length, before + (listener === "plain" ? 1 : 0));
        const keyed = await headOf(listener, HANDSHAKE("/secured", ["X-API-Key: k1"]));
        assertEquals(keyed.status, 101);
      }
    }, { routes });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: with tracing disabled the handshake carries the caller's traceparent and tracestate as sent, on both listeners", async () => {
  const up = startRawWsUpstream();
  const cases = [
    // Tracing would give a new span id and flags 03, and drop a tracestate of 33 members.
    [
      "Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
      `Tracestate: ${Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(",")}`,
    ],
    // Invalid (upper case): tracing would start a new trace without the tracestate.
    ["Traceparent: 00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", "Tracestate: a=1"],
  ];
  try {
    await withGateway(up, async ({ headOf }) => {
      for (const listener of LISTENERS) {
        for (const lines of cases) {
          assertEquals((await headOf(listener, HANDSHAKE("/ws", lines))).status, 101, listener);
          const sent = up.heads.at(-1)!.split("\r\n").filter((l) => /^trace/i.test(l));
          assertEquals(sent, lines.map((l) => l.replace(/^T/, "t")), listener);
        }
      }
    }, { observe: "tracing: { enabled: false }" });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: a side that disappears mid-session ends the other's, and nothing is left open", async () => {
  const upstreamSaw: string[] = [];
  const up = startRawWsUpstream(async (conn, frames) => {
    await writeAllTo(conn, wsFrame(new TextEncoder().encode("hello"), { masked: false }));
    if (up.heads.at(-1)!.startsWith("GET /drop")) return; // the connection ends, no close frame
    // Until the connection ends; a close is answered, as servers do.
    let saw = "end";
    try {
      while (true) {
        const frame = await frames.next();
        if (frame.opcode !== 0x8) continue;
        saw = `close ${closeOf(frame.payload)[0]}`;
        await writeAllTo(conn, wsFrame(frame.payload, { opcode: 0x8, masked: false }));
      }
    } catch {
      upstreamSaw.push(saw);
    }
  });
  try {
    await withGateway(up, async ({ g, connect }) => {
      const metrics = async () => {
        const text = await (await fetch(`${g.admin}/metrics`)).text();
        const active = /gateway_upstream_connections\{[^}]*state="active"\} (\d+)/.exec(text)?.[1];
        const inFlight = /gateway_requests_in_flight (\d+)/.exec(text)?.[1];
        return `active ${active}, in flight ${inFlight}`;
      };
      for (const listener of LISTENERS) {
        // The upstream goes: the byte relay ends the client's connection, the message relay
        // closes it with 1011.
        const conn = await connect(listener);
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/drop")));
          const frames = new FrameReader(conn);
          await frames.head();
          assertEquals(decode((await frames.next()).payload), "hello");
          if (listener === "plain") assertEquals(await within(5_000, frames.rest()), [], listener);
          else assertEquals(closeOf((await frames.next()).payload)[0], 1011);
        } finally {
          closeQuietly(conn);
        }
        // The client goes: the upstream's connection ends, after a 1001 from the message relay.
        const gone = await connect(listener);
        await writeAllTo(gone, new TextEncoder().encode(HANDSHAKE("/stay")));
        const frames = new FrameReader(gone);
        await frames.head();
        await frames.next();
        closeQuietly(gone);
        assertEquals(
          await within(5_000, until(() => upstreamSaw.shift())),
          listener === "plain" ? "end" : "close 1001",
        );
        await within(
          5_000,
          until(async () => await metrics() === "active 0, in flight 0" || undefined),
        );
        assertEquals(await metrics(), "active 0, in flight 0", listener);
      }
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: an idle session outlives the listener's keep-alive timeout", async () => {
  const up = startEchoWsUpstream();
  try {
    await withGateway(up, async ({ connect }) => {
      await Promise.all(LISTENERS.map(async (listener) => {
        const conn = await connect(listener);
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
          const frames = new FrameReader(conn);
          await frames.head();
          await new Promise((r) => setTimeout(r, 2_500));
          await writeAllTo(conn, clientFrame("still there?"));
          assertEquals(decode((await frames.next()).payload), "echo:still there?", listener);
        } finally {
          closeQuietly(conn);
        }
      }));
    }, { server: "keepalive_timeout_s: 1" });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: a client that half-closes after its close frame still gets the upstream's last messages and close", async () => {
  const up = startEchoWsUpstream();
  try {
    await withGateway(up, async ({ connect }) => {
      for (const listener of LISTENERS) {
        const conn = await connect(listener);
        try {
          await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
          const frames = new FrameReader(conn);
          await frames.head();
          await writeAllTo(conn, clientFrame("last words"));
          await writeAllTo(conn, wsFrame(closePayload(1000, "bye"), { opcode: 0x8 }));
          await conn.closeWrite();
          // The byte relay closed both connections at the client's end of stream: nothing came.
          const rest = await within(5_000, frames.rest());
          assertEquals(
            rest !== "timed out" &&
              rest.map((f) => f.opcode === 0x8 ? closeOf(f.payload) : decode(f.payload)),
            // The runtime answers a client's close itself, at once: what the upstream sends
            // after it is not passed on.
            listener === "plain" ? ["echo:last words", [1000, "bye"]] : [[1000, "bye"]],
            listener,
          );
        } finally {
          closeQuietly(conn);
        }
      }
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: a reload leaves open sessions alone, even one that drops their route and upstream", async () => {
  const up = startEchoWsUpstream();
  try {
    await withGateway(up, async ({ g, connect, exchange }) => {
      const sessions = await Promise.all(LISTENERS.map(async (listener) => {
        const conn = await connect(listener);
        await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws")));
        const frames = new FrameReader(conn);
        await frames.head();
        return { listener, conn, frames };
      }));
      try {
        const config = await Deno.readTextFile(g.file);
        await Deno.writeTextFile(
          g.file,
          config.replace(
            /upstreams:[\s\S]*/,
            `upstreams:
  other: { targets: [ { url: "http://127.0.0.1:${closedPort()}" } ] }
routes:
  - { name: other, match: { path: /x }, upstream: other }
`,
          ),
        );
        const reloaded = await g.gw.reload("test");
        assertEquals(reloaded.errors, []);
        // The new plan serves new requests: the route is gone.
        assertEquals((await exchange("plain", closing(HANDSHAKE("/ws")))).status, 404);
        for (const { listener, conn, frames } of sessions) {
          await writeAllTo(conn, clientFrame("after"));
          assertEquals(decode((await frames.next()).payload), "echo:after", listener);
        }
      } finally {
        for (const { conn } of sessions) closeQuietly(conn);
      }
    });
  } finally {
    await up.close();
  }
});

Deno.test("websocket: the upstream's 101 is waited for as any response head, first_byte_ms, not connect_ms", async () => {
  const up = startRawUpstream(async (x) => {
    // Answers the handshake (RFC 6455's example key, which HANDSHAKE sends) after 1 s.
    await new Promise((r) => setTimeout(r, 1_000));
    await x.write(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n" +
        "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    x.close();
  });
  const routes = `  - name: slow-connects-fine
    match: { path: /patient }
    upstream: up
    timeout: { connect_ms: 200, first_byte_ms: 10000 }
  - name: impatient
    match: { path: /impatient }
    upstream: up
    timeout: { connect_ms: 10000, first_byte_ms: 200 }`;
  try {
    await withGateway(up, async ({ exchange, headOf }) => {
      for (const listener of LISTENERS) {
        // Waited for within connect_ms: 504 after 200 ms, and 101 after 10 s with the other.
        assertEquals((await headOf(listener, HANDSHAKE("/patient"))).status, 101, listener);
        const impatient = await exchange(listener, closing(HANDSHAKE("/impatient")));
        assertEquals(
          [impatient.status, JSON.parse(impatient.body).error.code],
          [504, "upstream_timeout"],
          listener,
        );
      }
    }, { routes });
  } finally {
    up.close();
  }
});

Deno.test("websocket: a 101 without the key's Sec-WebSocket-Accept is a 502, and no byte of the client's is tunnelled", async () => {
  // An upstream path that answers 101 to anything (a status echo, a misrouted handler) would
  // otherwise get a raw tunnel: the client's next bytes reached it as requests the gateway never
  // parsed, routed or checked (WebSocket smuggling). RFC 6455 §4.1: such a 101 is no handshake.
  const up = startRawUpstream(async (x) => {
    if (x.served > 0) {
      await x.write("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nsmuggled!");
      return;
    }
    const accept = x.path === "/wrong"
      ? "sec-websocket-accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
      : "";
    await x.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n${accept}\r\n`,
    );
  });
  const routes = "  - { name: ws, match: { path: /ws }, upstream: up }\n" +
    "  - { name: wrong, match: { path: /wrong }, upstream: up }";
  try {
    await withGateway(up, async ({ exchange }) => {
      for (const path of ["/ws", "/wrong"]) {
        const res = await exchange(
          "plain",
          HANDSHAKE(path) +
            "GET /internal HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assertEquals(res.status, 502, `${path}: ${res.raw}`);
        assertMatch(res.body, /"code":"upstream_error"/, path);
        // The bytes after the handshake are the gateway's to parse: a request no route matches.
        assertMatch(res.body, /HTTP\/1\.1 404 [^]*"code":"route_not_found"/, path);
        assertEquals(res.raw.includes("smuggled!"), false, `${path}: ${res.raw}`);
      }
    }, { routes });
    assertEquals(up.paths.includes("/internal"), false, JSON.stringify(up.paths));
  } finally {
    up.close();
  }
});
