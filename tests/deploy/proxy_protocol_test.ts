/**
 * PROXY protocol listeners end to end: a raw TCP client plays the load balancer
 * (v1 and v2 headers) in front of a real gateway and a real upstream.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { proxyV1, proxyV2 } from "./proxy_bytes.ts";

const LB = { hostname: "10.0.0.1", port: 443 };

function config(upstream: string, trusted: string, extra = ""): string {
  return `listeners:
  - { name: public, host: 127.0.0.1, port: 0, proxy_protocol: true, proxy_protocol_timeout_ms: 300 }
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 2 }
security: { trusted_proxies: [${trusted}] }
upstreams:
  echo: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: echo }
${extra}`;
}

/**
 * Sends `prefix` then the requests on one connection and reads until the gateway closes it;
 * after the first 5 bytes, in writes of `pieceBytes` a few milliseconds apart.
 */
async function exchange(
  base: string,
  prefix: Uint8Array,
  requests: string[],
  pieceBytes = Infinity,
): Promise<string> {
  const u = new URL(base);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    const body = new TextEncoder().encode(requests.join(""));
    const all = new Uint8Array([...prefix, ...body]);
    // Split the header over two writes to exercise incremental parsing.
    try {
      await conn.write(all.subarray(0, 5));
      for (let at = 5; at < all.length; at += pieceBytes) {
        await new Promise((r) => setTimeout(r, pieceBytes === Infinity ? 10 : 5));
        const piece = all.subarray(at, Math.min(all.length, at + pieceBytes));
        for (let i = 0; i < piece.length;) i += await conn.write(piece.subarray(i));
      }
    } catch {
      // The gateway may close a refused connection before everything is written.
    }
    let out = "";
    const buf = new Uint8Array(65536);
    const dec = new TextDecoder();
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      out += dec.decode(buf.subarray(0, n));
    }
    return out;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

const get = (path: string, last = true) =>
  `GET ${path} HTTP/1.1\r\nHost: api.test\r\n${last ? "Connection: close\r\n" : ""}\r\n`;

function forwardedFor(raw: string): string[] {
  return [...raw.matchAll(/"x-forwarded-for":\s*"([^"]*)"/g)].map((m) => m[1]!);
}

Deno.test("proxy_protocol: v1 and v2 headers give the upstream the real client address", async () => {
  const up = startUpstream();
  const g = await startGateway(config(up.url, "127.0.0.1"));
  try {
    const v1 = await exchange(
      g.url(),
      proxyV1({ hostname: "203.0.113.7", port: 40001 }, LB),
      [get("/one", false), get("/two")],
    );
    assertEquals(v1.match(/HTTP\/1\.1 200/g)?.length, 2, v1);
    assertEquals(forwardedFor(v1), ["203.0.113.7", "203.0.113.7"]);

    const v2 = await exchange(
      g.url(),
      proxyV2({ hostname: "2001:db8::7", port: 40002 }, { hostname: "2001:db8::1", port: 443 }),
      [get("/three")],
    );
    assertMatch(v2, /^HTTP\/1\.1 200/);
    assertEquals(forwardedFor(v2), ["2001:db8::7"]);

    // LOCAL (a balancer health check): the peer itself is the client.
    const local = await exchange(g.url(), proxyV2(null, null), [get("/healthz")]);
    assertEquals(forwardedFor(local), ["127.0.0.1"]);
    assertEquals(up.received.map((r) => r.url), ["/one", "/two", "/three", "/healthz"]);

    // A header that names no client (LOCAL, UNKNOWN) leaves the balancer's address, but an
    // X-Forwarded-For behind it is the client's own bytes: not believed (it set the client IP).
    const spoofed = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: api.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n`;
    const unknown = await exchange(g.url(), new TextEncoder().encode("PROXY UNKNOWN\r\n"), [
      spoofed("/unknown"),
    ]);
    const localSpoof = await exchange(g.url(), proxyV2(null, null), [spoofed("/local")]);
    assertEquals([...forwardedFor(unknown), ...forwardedFor(localSpoof)], [
      "127.0.0.1",
      "127.0.0.1",
    ]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("proxy_protocol: a v2 header near its 64 KiB ceiling, arriving over many reads, is read whole", async () => {
  // The header is read into a buffer doubled when full (copied whole on every read, it cost
  // n^2/2): its growth over reads, and the request bytes read with its end, are what can break.
  const up = startUpstream();
  const g = await startGateway(config(up.url, "127.0.0.1"));
  try {
    // Two NOOP TLVs (type 0x04) of 32,000 bytes each.
    const noop = [0x04, 32_000 >> 8, 32_000 & 255, ...new Array<number>(32_000).fill(0x61)];
    const header = proxyV2({ hostname: "203.0.113.9", port: 40003 }, LB, [...noop, ...noop]);
    const raw = await exchange(g.url(), header, [get("/tlvs")], 3_001);
    assertMatch(raw, /^HTTP\/1\.1 200/);
    assertEquals(forwardedFor(raw), ["203.0.113.9"]);
    assertEquals(up.received.map((r) => r.url), ["/tlvs"]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("proxy_protocol: IP rules and key: ip limits apply to the client in the header", async () => {
  const up = startUpstream();
  const g = await startGateway(config(
    up.url,
    "127.0.0.1",
    `  - name: limited
    match: { path: /limited }
    upstream: echo
    ip: { deny: [198.51.100.0/24] }
    rate_limit: { algorithm: fixed_window, limit: 1, per: 1m, key: ip }
`,
  ));
  const status = (raw: string) => raw.match(/^HTTP\/1\.1 (\d{3})/)?.[1];
  const from = (hostname: string) =>
    exchange(g.url(), proxyV1({ hostname, port: 1000 }, LB), [get("/limited")]).then(status);
  try {
    assertEquals(await from("203.0.113.1"), "200");
    assertEquals(await from("203.0.113.1"), "429");
    assertEquals(await from("203.0.113.2"), "200");
    assertEquals(await from("198.51.100.7"), "403");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("proxy_protocol: connections without a valid header, or from untrusted peers, are closed", async () => {
  const up = startUpstream();
  const g = await startGateway(config(up.url, "127.0.0.1"));
  const other = await startGateway(config(up.url, "10.0.0.0/8"));
  try {
    // Plain HTTP to a PROXY listener: closed, nothing served.
    assertEquals(await exchange(g.url(), new Uint8Array(), [get("/plain")]), "");
    // A malformed header.
    const bad = new TextEncoder().encode("PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n");
    assertEquals(await exchange(g.url(), bad, [get("/bad")]), "");
    // A well-formed header from a peer outside trusted_proxies.
    const spoof = proxyV1({ hostname: "198.51.100.1", port: 1 }, LB);
    assertEquals(await exchange(other.url(), spoof, [get("/spoofed")]), "");
    // Silence: closed after proxy_protocol_timeout_ms.
    const u = new URL(g.url());
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    const started = performance.now();
    const n = await conn.read(new Uint8Array(16)).catch(() => null);
    conn.close();
    assertEquals(n, null);
    const waited = performance.now() - started;
    assertOk(waited >= 250 && waited < 3000, `closed after ${waited} ms`);
    assertEquals(up.received.length, 0);
  } finally {
    await other.close();
    await g.close();
    await up.close();
  }
});

Deno.test("proxy_protocol: a listener without trusted_proxies is a config error", async () => {
  const up = startUpstream();
  try {
    let messages: string[] = [];
    try {
      const g = await startGateway(config(up.url, ""));
      await g.close();
    } catch (e) {
      assertOk(e instanceof ConfigError);
      messages = e.issues.map(formatIssue);
    }
    assertEquals(messages.length, 1);
    assertMatch(
      messages[0]!,
      /gateway\.yaml:2:\d+: listeners\[0\]\.proxy_protocol: proxy_protocol needs security\.trusted_proxies/,
    );
  } finally {
    await up.close();
  }
});

Deno.test("proxy_protocol: a TLS listener reads the header first, then the TLS handshake", async () => {
  const up = startUpstream();
  const fixtures = new URL("./fixtures/", import.meta.url).pathname;
  const ca = await Deno.readTextFile(`${fixtures}ca.crt`);
  const g = await startGateway(`listeners:
  - name: tls
    host: 127.0.0.1
    port: 0
    proxy_protocol: true
    tls: { cert: "${fixtures}server.crt", key: "${fixtures}server.key" }
server: { drain_timeout_s: 2 }
security: { trusted_proxies: [127.0.0.1/32] }
upstreams:
  echo: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: echo }
`);
  try {
    const u = new URL(g.url());
    assertEquals(u.protocol, "https:");
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: Number(u.port) });
    await tcp.write(proxyV2({ hostname: "192.0.2.44", port: 5555 }, LB));
    const tls = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [ca] });
    try {
      await tls.write(new TextEncoder().encode(get("/secure")));
      let raw = "";
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await tls.read(buf).catch(() => null);
        if (n === null) break;
        raw += new TextDecoder().decode(buf.subarray(0, n));
      }
      assertMatch(raw, /^HTTP\/1\.1 200/);
      assertEquals(forwardedFor(raw), ["192.0.2.44"]);
    } finally {
      tls.close();
    }
  } finally {
    await g.close();
    await up.close();
  }
});
