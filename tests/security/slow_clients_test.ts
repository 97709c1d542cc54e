/**
 * Slow and idle clients on a plain listener: a head that does not complete
 * within `security.header_timeout_ms` gets 408 in the common shape and the
 * connection is closed; a kept-alive connection with nothing to say is closed
 * silently after `server.keepalive_timeout_s`. Neither reaches the upstream.
 * A client that stops reading its answer is closed after `send_timeout_ms`, on
 * the gateway's own server and on a node:https (TLS 1.3) listener alike.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { readUntilClose } from "../helpers/raw.ts";
import { selfSignedCert } from "../helpers/tls.ts";

interface Rig {
  g: TestGateway;
  up: TestServer;
  /** Request bodies the upstream read, in arrival order. */
  bodies: string[];
}

async function withRig(fn: (rig: Rig) => Promise<void>): Promise<void> {
  const bodies: string[] = [];
  const up = startUpstream(async (req) => {
    bodies.push(await req.text());
    return new Response("ok");
  });
  try {
    const g = await startGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
security: { header_timeout_ms: 300 }
server: { drain_timeout_s: 2, keepalive_timeout_s: 0.4 }
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`);
    try {
      await fn({ g, up, bodies });
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
}

const enc = new TextEncoder();

async function connect(base: string): Promise<Deno.TcpConn> {
  const u = new URL(base);
  return await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
}

Deno.test("a request head that stalls past header_timeout_ms is answered 408 and closed", async () => {
  await withRig(async ({ g, up }) => {
    const conn = await connect(g.url());
    await conn.write(enc.encode("GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Part: "));
    const { text, ms } = await readUntilClose(conn, 5000);
    assertMatch(text, /^HTTP\/1\.1 408 /);
    assertMatch(text, /"code":"request_timeout"/);
    assertMatch(text, /connection: close/i);
    assertOk(ms >= 250 && ms < 3000, `answered after ${ms} ms`);
    assertEquals(up.received.length, 0);
  });
});

Deno.test("a head sent one byte at a time is still bounded by header_timeout_ms", async () => {
  await withRig(async ({ g, up }) => {
    const conn = await connect(g.url());
    const head = "GET /drip HTTP/1.1\r\nHost: localhost\r\n" + "X-Pad: y\r\n".repeat(50) + "\r\n";
    const started = performance.now();
    const reply = readUntilClose(conn, 5000);
    try {
      for (const ch of head) {
        await conn.write(enc.encode(ch));
        await new Promise((r) => setTimeout(r, 20));
      }
    } catch {
      // the server closed the connection under us
    }
    const { text } = await reply;
    assertMatch(text, /^HTTP\/1\.1 408 /);
    assertOk(performance.now() - started < 3000);
    assertEquals(up.received.length, 0);
  });
});

Deno.test("an idle kept-alive connection is closed after keepalive_timeout_s; a silent new one after header_timeout_ms", async () => {
  await withRig(async ({ g }) => {
    const conn = await connect(g.url());
    await conn.write(enc.encode("GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const { text, ms } = await readUntilClose(conn, 5000);
    assertMatch(text, /^HTTP\/1\.1 200 /);
    assertOk(!/408/.test(text), "an idle connection is closed without an answer");
    assertOk(ms >= 350 && ms < 3000, `closed after ${ms} ms`);

    const silent = await connect(g.url());
    const quiet = await readUntilClose(silent, 5000);
    assertEquals(quiet.text, "", "nothing sent, nothing answered");
    assertOk(quiet.ms >= 250 && quiet.ms < 3000, `closed after ${quiet.ms} ms`);
  });
});

Deno.test("pipelined requests are answered in order on one connection", async () => {
  await withRig(async ({ g, up, bodies }) => {
    const conn = await connect(g.url());
    await conn.write(enc.encode(
      "GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n" +
        "POST /two HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc" +
        "GET /three HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ));
    const { text } = await readUntilClose(conn, 5000);
    assertEquals(text.match(/HTTP\/1\.1 200 /g)?.length, 3);
    assertEquals(up.received.map((r) => r.url), ["/one", "/two", "/three"]);
    assertEquals(bodies, ["", "abc", ""]);
  });
});

Deno.test("Expect: 100-continue gets 100 before the body is read; HTTP/1.0 closes unless kept alive", async () => {
  await withRig(async ({ g, bodies }) => {
    const conn = await connect(g.url());
    await conn.write(enc.encode(
      "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    ));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    assertMatch(
      new TextDecoder().decode(buf.subarray(0, n ?? 0)),
      /^HTTP\/1\.1 100 Continue\r\n\r\n/,
    );
    await conn.write(enc.encode("hello"));
    const { text } = await readUntilClose(conn, 5000);
    assertMatch(text, /^HTTP\/1\.1 200 /);
    assertEquals(bodies, ["hello"]);

    const old = await connect(g.url());
    await old.write(enc.encode("GET /old HTTP/1.0\r\n\r\n"));
    const reply = await readUntilClose(old, 5000);
    assertMatch(reply.text, /^HTTP\/1\.1 200 /);
    assertMatch(reply.text, /connection: close/i);
    assertOk(reply.ms < 3000, "HTTP/1.0 without keep-alive is closed after the answer");
  });
});

const BIG = 32 * 1024 * 1024;

/**
 * An upstream with a large answer (`/big`) and one that trickles three pieces (`/drip`), behind a
 * listener of the gateway's own server (`public`) and a node:https one (`tls13`).
 */
async function withSendRig(
  fn: (g: TestGateway, connect: Record<string, () => Promise<Deno.Conn>>) => Promise<void>,
): Promise<void> {
  const up = startUpstream((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/big") return new Response(new Uint8Array(BIG));
    let n = 0;
    return new Response(
      new ReadableStream({
        async pull(c) {
          if (n++ === 3) return c.close();
          await new Promise((r) => setTimeout(r, 700));
          c.enqueue(enc.encode("piece"));
        },
      }),
    );
  });
  const dir = await Deno.makeTempDir();
  try {
    const { cert, key } = await selfSignedCert(dir);
    const caCerts = [await Deno.readTextFile(cert)];
    const g = await startGateway(`
listeners:
  - { name: public, host: 127.0.0.1, port: 0 }
  - { name: tls13, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, min_version: "1.3" } }
admin: { host: 127.0.0.1, port: 0 }
security: { send_timeout_ms: 300 }
server: { drain_timeout_s: 2 }
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`);
    const port = (name: string) => Number(new URL(g.url(name)).port);
    try {
      await fn(g, {
        public: () => Deno.connect({ hostname: "127.0.0.1", port: port("public") }),
        tls13: () => Deno.connectTls({ hostname: "localhost", port: port("tls13"), caCerts }),
      });
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a client that stops reading its answer is closed after send_timeout_ms; a slow upstream is not one", async () => {
  await withSendRig(async (_g, connect) => {
    // Until 2026-12-08 the node:https listener (tls13) waited for such a client for good.
    for (const listener of ["public", "tls13"]) {
      const conn = await connect[listener]!();
      await conn.write(enc.encode("GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"));
      // Not read: the socket buffers fill and the gateway's writes wait.
      await new Promise((r) => setTimeout(r, 1500));
      const { text, ms } = await readUntilClose(conn, 5000);
      assertMatch(text, /^HTTP\/1\.1 200 /, listener);
      assertOk(
        text.length < BIG,
        `${listener}: the answer was cut off (${text.length} bytes read)`,
      );
      assertOk(ms < 3000, `${listener}: closed by the gateway (${ms} ms after reading began)`);

      // Waiting for the upstream's next piece is not the client's delay.
      const reader = await connect[listener]!();
      await reader.write(
        enc.encode("GET /drip HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
      );
      const drip = await readUntilClose(reader, 8000);
      assertMatch(drip.text, /^HTTP\/1\.1 200 /, listener);
      assertEquals(drip.text.match(/piece/g)?.length, 3, listener);
    }
  });
});
