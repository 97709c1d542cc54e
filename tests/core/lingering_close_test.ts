/**
 * A request answered before its body was read (a refusal, an upstream that
 * answered early) ends its connection, and the client may still be sending.
 * The gateway half-closes and drops what comes instead of closing outright:
 * closed with unread bytes, the socket is reset, and a client that writes its
 * whole request before reading fails on the write without seeing the answer.
 */
import { assertEquals, within } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";
import { proxyV1 } from "../deploy/proxy_bytes.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const KEY = "key-0123456789abcdef";
const BODY = 16 * 1024 * 1024;
/** How long a client waits for the server to end the connection after its answer. */
const READ_LIMIT_MS = 15_000;

/** A plain connection to a listener's base URL. */
function connectTo(base: string): Promise<Deno.Conn> {
  const u = new URL(base);
  return Deno.connect({ hostname: u.hostname, port: Number(u.port) });
}

/**
 * Sends `head` and a body of `bodyBytes` on `conn`, then reads the answer: a
 * client that does not watch for an early one. Returns the write error, if a
 * write failed or stalled (10 s), the answer, and whether the server then ended
 * the connection. `prefix` goes first (a PROXY protocol header).
 */
async function writeThenRead(
  conn: Deno.Conn,
  head: string[],
  bodyBytes: number,
  prefix?: Uint8Array,
) {
  let writeError: string | null = null;
  // A server that neither reads the rest nor closes leaves these writes waiting.
  const stalled = setTimeout(() => {
    writeError = "stalled";
    conn.close();
  }, 10_000);
  try {
    if (prefix) await writeAllTo(conn, prefix);
    const lines = [...head, `Content-Length: ${bodyBytes}`, "", ""].join("\r\n");
    await writeAllTo(conn, new TextEncoder().encode(lines));
    const chunk = new Uint8Array(64 * 1024);
    for (let sent = 0; sent < bodyBytes; sent += chunk.length) await writeAllTo(conn, chunk);
  } catch (e) {
    writeError ??= (e as Error).message;
  } finally {
    clearTimeout(stalled);
  }
  const { text, ms } = await readUntilClose(conn, READ_LIMIT_MS);
  return { writeError, res: parseResponse(text), closedByServer: ms < READ_LIMIT_MS };
}

/** `fn` gets the base URL of a plain listener and of one behind the PROXY protocol. */
async function withGateway(fn: (base: string, proxied: string) => Promise<void>) {
  // Answers POSTs at once, without reading their bodies.
  const up = startUpstream((req) =>
    req.method === "POST" ? Response.json({ early: true }) : new Response("ok")
  );
  const gw = await startGateway(`listeners:
  - { name: public, host: 127.0.0.1, port: 0 }
  - { name: proxied, host: 127.0.0.1, port: 0, proxy_protocol: true }
admin: { host: 127.0.0.1, port: 0 }
security: { trusted_proxies: [127.0.0.1] }
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: a, api_keys: ["${KEY}"] }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: locked, match: { path: /locked }, upstream: up, auth: [keys] }
  - { name: small, match: { path: /small }, upstream: up, limits: { max_body_bytes: 1024 } }
  - { name: early, match: { path: /early }, upstream: up, limits: { max_body_bytes: ${2 * BODY} } }
`);
  try {
    await fn(gw.url("public"), gw.url("proxied"));
  } finally {
    await gw.close();
    await up.close();
  }
}

Deno.test("lingering close: a client writing a 16 MiB body it was refused for still reads the refusal", async () => {
  await withGateway(async (base, proxied) => {
    const tooLarge = await writeThenRead(
      await connectTo(base),
      ["POST /small HTTP/1.1", "Host: a"],
      BODY,
    );
    assertEquals(tooLarge.writeError, null);
    assertEquals(tooLarge.res.status, 413);
    assertEquals(JSON.parse(tooLarge.res.body).error.code, "payload_too_large");
    assertEquals(tooLarge.res.headers.get("connection"), "close");

    const noKey = await writeThenRead(
      await connectTo(base),
      ["POST /locked HTTP/1.1", "Host: a"],
      BODY,
    );
    assertEquals(noKey.writeError, null);
    assertEquals(noKey.res.status, 401);

    // Through the PROXY protocol front, which relays the half-close both ways.
    const relayed = await writeThenRead(
      await connectTo(proxied),
      ["POST /small HTTP/1.1", "Host: a"],
      BODY,
      proxyV1({ hostname: "203.0.113.7", port: 40001 }, { hostname: "10.0.0.1", port: 80 }),
    );
    assertEquals(relayed.writeError, null);
    assertEquals(relayed.res.status, 413);

    // Refused at the head (not a Host the URL parser takes): whatever follows is dropped too.
    const badHost = await writeThenRead(await connectTo(base), [
      "POST /early HTTP/1.1",
      "Host: a b",
    ], BODY);
    assertEquals(badHost.writeError, null);
    assertEquals(badHost.res.status, 400);
  });
});

Deno.test("lingering close: an upstream's early answer reaches a client still sending its body", async () => {
  await withGateway(async (base) => {
    for (let i = 0; i < 3; i++) {
      const r = await writeThenRead(
        await connectTo(base),
        ["POST /early HTTP/1.1", "Host: a"],
        BODY,
      );
      assertEquals(r.writeError, null);
      assertEquals(r.res.status, 200);
      assertEquals(JSON.parse(r.res.body), { early: true });
    }
  });
});

/**
 * Sends 1 MiB of a declared 16 on `conn` (the gateway answers 413 and
 * half-closes), checks the gateway still reads what follows, then pauses past
 * the linger's idle limit and checks the gateway has closed.
 */
async function lingersUntilPause(conn: Deno.Conn): Promise<void> {
  try {
    const head = `POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${BODY}\r\n\r\n`;
    await writeAllTo(conn, new TextEncoder().encode(head));
    await writeAllTo(conn, new Uint8Array(1024 * 1024));
    const res = parseResponse(await readToEnd(conn));
    assertEquals(res.status, 413);
    // Still reading what the client sends: writes go through.
    assertEquals(await writesFail(conn), false);
    // 5 s without a byte ends the linger: the socket is closed, and writes are reset. Checked
    // after 9 s (a timer late by a stall is not a failure), long before the 30 s limit.
    await new Promise((r) => setTimeout(r, 9_000));
    assertEquals(await writesFail(conn), true);
  } finally {
    conn.close();
  }
}

Deno.test("lingering close: an answer that closes the connection reaches a client still sending a request it pipelined", async () => {
  const up = startUpstream(() => new Response("ok"));
  const gw = await startGateway(`listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { drain_delay_s: 3, drain_timeout_s: 5 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
  try {
    // Leaving: every answer says `Connection: close` while the listener still serves.
    const leaving = gw.gw.shutdown();
    const pipelined = await writeThenRead(await connectTo(gw.url()), [
      "GET /first HTTP/1.1",
      "Host: a",
      "",
      "POST /second HTTP/1.1",
      "Host: a",
    ], BODY);
    assertEquals(pipelined.writeError, null);
    assertEquals(pipelined.res.status, 200);
    assertEquals(pipelined.res.headers.get("connection"), "close");
    assertEquals(pipelined.closedByServer, true);
    await leaving;
  } finally {
    await gw.close();
    await up.close();
  }
});

Deno.test("lingering close: the gateway reads on after its answer, and closes once the client pauses", async () => {
  await withGateway(async (base) => await lingersUntilPause(await connectTo(base)));
});

Deno.test("lingering close: on a node:https listener too, it reads on, and closes once the client pauses", async () => {
  await withTlsGateway("node", async (gw) => await lingersUntilPause(await gw.connect()));
});

Deno.test("lingering close: on a TLS listener too, it reads on, and closes once the client pauses", async () => {
  await withTlsGateway("own", async (gw) => await lingersUntilPause(await gw.connect()));
});

/** What the peer sends until it half-closes (or closes). */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buf = new Uint8Array(65536);
  const dec = new TextDecoder();
  for (let n; (n = await conn.read(buf)) !== null;) chunks.push(dec.decode(buf.subarray(0, n)));
  return chunks.join("");
}

/** Whether a few one-byte writes, 50 ms apart, fail (the peer's socket is closed and resets). */
async function writesFail(conn: Deno.Conn): Promise<boolean> {
  try {
    for (let i = 0; i < 3; i++) {
      await conn.write(new Uint8Array(1));
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  } catch {
    return true;
  }
}

interface TlsGateway {
  /** Connects to the TLS listener. */
  connect(): Promise<Deno.Conn>;
  /** The gateway's plain listener, beside it. */
  plain: string;
  /** Stops the gateway (the helper stops it too, if the test did not). */
  close(): Promise<void>;
  /** Paths of the requests the upstream has received. */
  upstreamSaw(): string[];
}

/** What serves a TLS listener: the gateway's own server, `Deno.serve` (`http2: true`), `node:https`. */
type TlsServer = "own" | "deno-serve" | "node";
const TLS_SETTINGS: Record<TlsServer, string> = {
  own: "",
  "deno-serve": ", http2: true",
  // A TLS 1.3 floor puts the listener on node:https, as mTLS does.
  node: `, min_version: "1.3"`,
};

/** `fn` gets a gateway with a plain listener and a TLS one served by `server`. */
async function withTlsGateway(server: TlsServer, fn: (gw: TlsGateway) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "gw-linger-tls-" });
  const up = startUpstream();
  try {
    const { cert, key } = await selfSignedCert(dir);
    const gw = await startGateway(`listeners:
  - { name: plain, host: 127.0.0.1, port: 0 }
  - name: tls
    host: 127.0.0.1
    port: 0
    tls: { cert: ${cert}, key: ${key}${TLS_SETTINGS[server]} }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: small, match: { path: /small }, upstream: up, limits: { max_body_bytes: 1024 } }
`);
    const caCerts = [await Deno.readTextFile(cert)];
    const port = Number(new URL(gw.url("tls")).port);
    let closed: Promise<void> | null = null;
    const close = () => closed ??= gw.close();
    try {
      await fn({
        connect: () => Deno.connectTls({ hostname: "localhost", port, caCerts }),
        plain: gw.url("plain"),
        close,
        upstreamSaw: () => up.received.map((r) => r.url),
      });
    } finally {
      await close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A client writing 16 MiB it was refused for, on a TLS listener: the refusal,
 * the whole body taken, then the connection's end. Failed without the drop on
 * `Deno.serve` (the writes stalled, or the connection stayed open) and without
 * the linger on `node:https` (the writes were reset).
 */
async function refusedUploadOverTls(gw: TlsGateway) {
  const r = await writeThenRead(
    await gw.connect(),
    ["POST /small HTTP/1.1", "Host: localhost"],
    BODY,
  );
  assertEquals(r.writeError, null);
  assertEquals(r.res.status, 413);
  // The runtime's server (Deno.serve) adds its own `close` to the gateway's: "close, close".
  assertEquals(r.res.headers.get("connection")?.split(/\s*,\s*/).includes("close"), true);
  assertEquals(r.closedByServer, true);
}

Deno.test("lingering close: behind a TLS listener a refused upload is read and dropped, and the client reads the refusal", async () => {
  await withTlsGateway("own", refusedUploadOverTls);
});

Deno.test("lingering close: behind a TLS listener with HTTP/2 (Deno.serve) too", async () => {
  await withTlsGateway("deno-serve", refusedUploadOverTls);
});

Deno.test("lingering close: behind a node:https listener (TLS 1.3 floor, as mTLS) too", async () => {
  await withTlsGateway("node", refusedUploadOverTls);
});

Deno.test("lingering close: a shutdown does not wait for a client still sending (plain, TLS and node:https listeners)", async () => {
  for (const server of ["own", "node"] as const) await shutdownWhileLingering(server);
});

async function shutdownWhileLingering(server: TlsServer) {
  await withTlsGateway(server, async (gw) => {
    const conns = [await connectTo(gw.plain), await gw.connect()];
    // Each client is refused, and goes on sending a byte every 100 ms: lingering.
    let stop = false;
    const trickles = conns.map(async (conn) => {
      const head = `POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${BODY}\r\n\r\n`;
      await writeAllTo(conn, new TextEncoder().encode(head));
      await writeAllTo(conn, new Uint8Array(64 * 1024));
      assertEquals(parseResponse(await readToEnd(conn)).status, 413);
      try {
        while (!stop) {
          await conn.write(new Uint8Array(1));
          await new Promise((r) => setTimeout(r, 100));
        }
        return "still open";
      } catch {
        return "closed by the gateway";
      } finally {
        conn.close();
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    // The gateway stops at once (not after the 30 s linger), and the clients see their sockets closed
    // (15 s: far from 30, and room for a loaded machine).
    const closing = gw.close();
    const stopped = await within(15_000, closing.then(() => "stopped"));
    const ended = await within(15_000, Promise.all(trickles));
    stop = true;
    await closing;
    assertEquals(stopped, "stopped");
    assertEquals(ended, ["closed by the gateway", "closed by the gateway"]);
  });
}

/**
 * Sends, in one write, a POST refused for its declared size with all its body,
 * then `pipelined`, and reads until the gateway closes: what it answered.
 */
async function pipelinedAfterRefusal(conn: Deno.Conn, pipelined: string[]): Promise<string> {
  const refused = `POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000\r\n\r\n${
    "x".repeat(2000)
  }`;
  const wire = [refused, ...pipelined.map((p) => `GET ${p} HTTP/1.1\r\nHost: localhost\r\n\r\n`)];
  await writeAllTo(conn, new TextEncoder().encode(wire.join("")));
  try {
    return await readToEnd(conn);
  } finally {
    conn.close();
  }
}

// Not on Deno.serve (TLS listeners with HTTP/2): it goes on serving a connection whose answer
// said `close` (README, "Known limits").
Deno.test("lingering close: nothing pipelined after the refusal is served (plain, TLS and node:https listeners)", async () => {
  for (const server of ["own", "node"] as const) {
    await withTlsGateway(server, async (gw) => {
      for (const conn of [await connectTo(gw.plain), await gw.connect()]) {
        const answered = await pipelinedAfterRefusal(conn, ["/small?one", "/small?two"]);
        assertEquals(answered.match(/^HTTP\/1\.1 \d+/gm), ["HTTP/1.1 413"]);
      }
      // Nothing was left in flight: the gateway stops at once.
      assertEquals(await within(15_000, gw.close().then(() => "stopped")), "stopped");
      assertEquals(gw.upstreamSaw(), []);
    });
  }
});

Deno.test("pipelined requests on a node:https listener are answered in order", async () => {
  await withTlsGateway("node", async (gw) => {
    const conn = await gw.connect();
    const paths = ["/small?1", "/small?2", "/small?3"];
    const wire = paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: localhost\r\n\r\n`).join("");
    await writeAllTo(
      conn,
      new TextEncoder().encode(
        wire + "GET /small?4 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
      ),
    );
    const answered = await readToEnd(conn);
    conn.close();
    assertEquals(answered.match(/^HTTP\/1\.1 \d+/gm)?.length, 4);
    // The test upstream answers with what it received, so the bodies name the paths in order.
    assertEquals([...answered.matchAll(/small\?(\d)/g)].map((m) => m[1]), ["1", "2", "3", "4"]);
  });
});
