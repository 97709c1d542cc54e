/** https targets: the certificate is checked, and the handshake is part of the connect. */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
import { closeQuietly, copySocket } from "../../lib/proxy/http1/socket_io.ts";
import { exchange } from "../../lib/proxy/http1/client.ts";
import { parseTarget, TargetPool } from "../../lib/proxy/http1/pool.ts";

/** A TLS server on a self-signed certificate (`cert`: its PEM, the CA that would trust it). */
async function serveSelfSigned(
  handler: () => Response | Promise<Response>,
): Promise<{ url: string; port: number; cert: string; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "gw-tls-up-" });
  const files = await selfSignedCert(dir);
  const cert = await Deno.readTextFile(files.cert);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key: await Deno.readTextFile(files.key),
    onListen: () => {},
  }, handler);
  return {
    url: `https://localhost:${server.addr.port}`,
    port: server.addr.port,
    cert,
    close: async () => {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A TLS server whose certificate no CA the gateway trusts has signed; it answers 200. */
const startUntrusted = () => serveSelfSigned(() => new Response("insecure"));

Deno.test("https target: an untrusted certificate is a connect error, logged, and a POST goes to the next target", async () => {
  const bad = await startUntrusted();
  const good = startUpstream();
  const lines: string[] = [];
  const g = await startGateway(
    baseConfig(`
upstreams:
  only_bad: { targets: [ { url: "${bad.url}" } ] }
  both:
    targets: [ { url: "${bad.url}" }, { url: "${good.url}" } ]
    retries: { attempts: 1, on: [connect_error] }
routes:
  - { name: bad, match: { path: /bad }, upstream: only_bad }
  - { name: both, match: { path: /both }, upstream: both }
`),
    { logger: new JsonLogger("warn", (l) => lines.push(l)) },
  );
  try {
    await assertError(await fetch(`${g.url()}/bad`), 502, "bad_gateway");
    const log = lines.map((l) => JSON.parse(l)).find((l) =>
      l.msg === "cannot connect to an upstream target"
    );
    assertOk(log, `no log of the refused certificate in ${lines.join("\n")}`);
    assertEquals([log.target, log.kind], [bad.url, "connect_error"]);
    assertMatch(log.error, /certificate/i);
    // Nothing was sent to the first target: a POST may go to the other one.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${g.url()}/both`, { method: "POST", body: "x" });
      assertEquals(res.status, 200, `round ${i}`);
      await res.body?.cancel();
    }
  } finally {
    await g.close();
    await bad.close();
    await good.close();
  }
});

Deno.test("https target: a TLS handshake that never completes is bounded by connect_ms", async () => {
  // Accepts TCP connections and says nothing.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) held.push(c);
  })().catch(() => {});
  const g = await startGateway(baseConfig(`
upstreams:
  a:
    targets: [ { url: "https://127.0.0.1:${(listener.addr as Deno.NetAddr).port}" } ]
    timeout: { connect_ms: 200, first_byte_ms: 5000 }
routes:
  - { name: all, match: { path: / }, upstream: a }
`));
  try {
    const started = performance.now();
    await assertError(await fetch(`${g.url()}/x`), 504, "upstream_timeout");
    const took = performance.now() - started;
    assertOk(took < 2000, `took ${took} ms: the handshake waited for first_byte_ms`);
  } finally {
    await g.close();
    listener.close();
    held.forEach(closeQuietly);
  }
});

Deno.test("https target: first_byte_ms counts from the request's sending, not across the TLS handshake", async () => {
  // The handshake takes 300 ms (a front that holds the bytes back), the answer 100 ms more:
  // each within its bound. Until 2026-12-08 the first byte was waited for from before the
  // connect, so a slow handshake left the answer less than first_byte_ms, here nothing.
  const server = await serveSelfSigned(async () => {
    await new Promise((r) => setTimeout(r, 100));
    return new Response("answered");
  });
  const front = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of front) {
      conns.push(c);
      (async () => {
        await new Promise((r) => setTimeout(r, 300));
        const back = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        conns.push(back);
        await Promise.all([copySocket(c, back, 16384), copySocket(back, c, 16384)]);
        closeQuietly(c);
        closeQuietly(back);
      })().catch(() => {});
    }
  })().catch(() => {});
  const pool = new TargetPool(
    parseTarget(`https://localhost:${(front.addr as Deno.NetAddr).port}`),
    { maxIdle: 1, idleTimeoutMs: 60_000, caCerts: [server.cert] },
  );
  try {
    const res = await exchange(
      pool,
      {
        method: "GET",
        path: "/",
        headerBlock: "host: localhost\r\n",
        body: null,
        bodyLength: null,
      },
      {
        connectTimeoutMs: 2_000,
        firstByteTimeoutMs: 250,
        requestTimeoutMs: 5_000,
        startedAt: performance.now(),
      },
    );
    const body = res.body instanceof ReadableStream
      ? await new Response(res.body).text()
      : res.body;
    assertEquals([res.status, body], [200, "answered"]);
  } finally {
    pool.close();
    front.close();
    conns.forEach(closeQuietly);
    await server.close();
  }
});
