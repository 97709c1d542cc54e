/**
 * TLS listeners are served by the gateway's own HTTP/1.1 server unless they
 * offer HTTP/2 (`http2: true`, the runtime's server): the protocol each
 * announces, and the head deadline the own server brings to TLS.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

interface TlsSetup {
  gw: TestGateway;
  /** A TLS connection to the listener named `name`, offering `alpn`. */
  connect(name: string, alpn?: string[]): Promise<Deno.TlsConn>;
  port(name: string): number;
}

/** A gateway with TLS listeners `own` (the default) and `h2` (`http2: true`), 300 ms head timeout. */
async function withTlsListeners(upstream: string, fn: (s: TlsSetup) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "gw-tls-listener-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const gw = await startGateway(`listeners:
  - { name: own, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key} } }
  - { name: h2, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, http2: true } }
admin: { host: 127.0.0.1, port: 0 }
security: { header_timeout_ms: 300 }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
    const caCerts = [await Deno.readTextFile(cert)];
    const port = (name: string) => Number(new URL(gw.url(name)).port);
    try {
      await fn({
        gw,
        port,
        connect: (name, alpn) =>
          Deno.connectTls({
            hostname: "localhost",
            port: port(name),
            caCerts,
            ...(alpn ? { alpnProtocols: alpn } : {}),
          }),
      });
    } finally {
      await gw.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("TLS listeners: HTTP/1.1 by default, HTTP/2 by ALPN with http2: true", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    await withTlsListeners(up.url, async (s) => {
      for (const [name, expected] of [["own", "http/1.1"], ["h2", "h2"]]) {
        const conn = await s.connect(name!, ["h2", "http/1.1"]);
        try {
          assertEquals((await conn.handshake()).alpnProtocol, expected, name);
        } finally {
          closeQuietly(conn);
        }
      }
      const conn = await s.connect("own");
      await writeAllTo(
        conn,
        new TextEncoder().encode("GET /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
      );
      const res = parseResponse((await readUntilClose(conn, 5_000)).text);
      assertEquals([res.status, res.body], [200, "ok"]);
      assertEquals(up.received.at(-1)?.headers.get("x-forwarded-proto"), "https");
    });
  } finally {
    await up.close();
  }
});

// One that never starts its handshake is not: the runtime keeps the socket of a TLS connection
// closed before its handshake open (README, "Known limits").
Deno.test("TLS listener: a client that sends no head, or sends it too slowly, is cut off", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    await withTlsListeners(up.url, async (s) => {
      const silent = await s.connect("own");
      await silent.handshake();
      const { ms } = await readUntilClose(silent, 10_000);
      assertOk(ms < 5_000, `a connection without a request was held ${Math.round(ms)} ms`);

      const slow = await s.connect("own");
      await writeAllTo(slow, new TextEncoder().encode("GET /slow HTTP/1.1\r\nHost: a\r\nX-Part: "));
      const answer = await readUntilClose(slow, 10_000);
      assertMatch(answer.text, /^HTTP\/1\.1 408 /);
      assertMatch(answer.text, /"code":"request_timeout"/);
      assertEquals(up.received.length, 0);
    });
  } finally {
    await up.close();
  }
});
