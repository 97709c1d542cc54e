/**
 * TLS policy of listeners: TLS 1.2 is the default floor (rustls implements
 * nothing older), and a 1.3 floor moves the listener to node:https, which can
 * enforce it. Driven with `openssl s_client` pinned to one protocol version.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";

/** The status line an HTTPS GET gets when the client speaks only `version`, or "" when refused. */
async function getWith(version: "-tls1_2" | "-tls1_3", port: number): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      version,
      "-quiet",
      "-servername",
      "localhost",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(
    new TextEncoder().encode("GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
  );
  await w.close();
  // s_client ends by itself once the answer (Connection: close) or the refusal is in; the kill
  // only ends one that hangs, and must not cut a slow but good exchange short.
  const timer = setTimeout(() => child.kill(), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout).split("\r\n")[0] ?? "";
}

/** A gateway with one TLS listener (`tlsExtra` adds keys to its tls map) in front of a test upstream. */
async function withTlsListener(
  tlsExtra: string,
  fn: (port: number, up: TestServer) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const up = startUpstream();
  try {
    await selfSignedCert(dir);
    const g = await startGateway(`
listeners:
  - name: tls
    host: 127.0.0.1
    port: 0
    tls: { cert: ${dir}/cert.pem, key: ${dir}/key.pem ${tlsExtra} }
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`);
    try {
      await fn(Number(new URL(g.url("tls")).port), up);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a TLS listener serves TLS 1.3 and, by default, TLS 1.2", () =>
  withTlsListener("", async (port, up) => {
    assertMatch(await getWith("-tls1_3", port), /^HTTP\/1\.1 200/);
    assertMatch(await getWith("-tls1_2", port), /^HTTP\/1\.1 200/);
    assertEquals(up.received.length, 2);
  }));

Deno.test("min_version 1.3 refuses a TLS 1.2 client and serves TLS 1.3", () =>
  withTlsListener(', min_version: "1.3"', async (port, up) => {
    assertMatch(await getWith("-tls1_3", port), /^HTTP\/1\.1 200/);
    assertEquals(await getWith("-tls1_2", port), "");
    assertEquals(up.received.length, 1, "the TLS 1.2 client never reached the upstream");
  }));
