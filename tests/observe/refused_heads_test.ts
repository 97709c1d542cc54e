/**
 * Requests the listener refuses before the handler — a malformed head, a head
 * too large, a head that came too slowly — are counted in the metrics and
 * written to the access log like every other refusal.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { readUntilClose } from "../helpers/raw.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

/** Sends `bytes` on a new connection and reads until the gateway closes it. */
async function exchange(g: TestGateway, bytes: string, limitMs = 5000): Promise<string> {
  const u = new URL(g.url());
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  await conn.write(new TextEncoder().encode(bytes));
  return (await readUntilClose(conn, limitMs)).text;
}

/** One listener, a 300 ms head timeout, an access log file, and a catch-all route. */
function refusingConfig(listener: string, upstream: string): string {
  return `
listeners: [ ${listener} ]
admin: { host: 127.0.0.1, port: 0 }
security: { header_timeout_ms: 300 }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
observe: { access_log: { path: access.log } }
upstreams:
  app: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`;
}

/** Each code counted once in `gateway_errors_total`, for requests no route was chosen for. */
async function assertCountedOnce(g: TestGateway, codes: string[]): Promise<void> {
  const metrics = await (await fetch(`${g.admin}/metrics`)).text();
  for (const code of codes) {
    assertMatch(
      metrics,
      new RegExp(`gateway_errors_total\\{route="unmatched",code="${code}"\\} 1\\b`),
    );
  }
}

Deno.test("refused heads are counted in the metrics and written to the access log", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    const g = await startGateway(
      refusingConfig("{ name: public, host: 127.0.0.1, port: 0 }", up.url),
    );
    try {
      const folded = await exchange(
        g,
        "GET /folded?x=1 HTTP/1.1\r\nHost: api.example.com\r\nX-A: one\r\n two\r\n\r\n",
      );
      assertMatch(folded, /^HTTP\/1\.1 400 /);
      const id = /x-request-id: ([^\r]+)/i.exec(folded)?.[1];
      assertOk(id !== undefined, "the refusal carries a request id");
      assertMatch(folded, new RegExp(`"request_id":"${id}"`));

      const tooLarge = await exchange(
        g,
        `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${"y".repeat(70 * 1024)}\r\n\r\n`,
      );
      assertMatch(tooLarge, /^HTTP\/1\.1 431 /);

      const slow = await exchange(g, "GET /slow HTTP/1.1\r\nHost: a\r\nX-Part: ");
      assertMatch(slow, /^HTTP\/1\.1 408 /);
      assertEquals(up.received.length, 0);

      await assertCountedOnce(g, ["bad_request", "headers_too_large", "request_timeout"]);
      const metrics = await (await fetch(`${g.admin}/metrics`)).text();
      // The 431 and the 408 are recorded without a method: their heads were never parsed.
      assertMatch(
        metrics,
        /gateway_requests_total\{route="unmatched",method="GET",status_class="4xx"\} 1\b/,
      );
      assertMatch(
        metrics,
        /gateway_requests_total\{route="unmatched",method="OTHER",status_class="4xx"\} 2\b/,
      );
      assertMatch(metrics, /gateway_requests_in_flight 0\b/);

      await g.gw.deps.accessLogs.flushAll();
      const lines = (await Deno.readTextFile(`${g.dir}/access.log`)).trimEnd().split("\n")
        .map((l) => JSON.parse(l));
      assertEquals(lines.map((l) => [l.status, l.error_code]), [
        [400, "bad_request"],
        [431, "headers_too_large"],
        [408, "request_timeout"],
      ]);
      assertEquals(lines[0].request_id, id);
      assertEquals(lines[0].method, "GET");
      assertEquals(lines[0].path, "/folded?x=1");
      assertEquals(lines[0].host, "api.example.com");
      assertEquals(lines[0].client_ip, "127.0.0.1");
      assertEquals(lines[0].route, null);
      assertOk(lines[2].latency_ms >= 250, `the slow head took ${lines[2].latency_ms} ms`);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
});

Deno.test("a refused absolute-form target is logged without its userinfo", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    const g = await startGateway(
      refusingConfig("{ name: public, host: 127.0.0.1, port: 0 }", up.url),
    );
    try {
      const targets = [
        "http://user:SECRET@x/any?page=2",
        "http://user:SECRET?more@x/any",
        "http://user:SECRET@x",
        "user:SECRET@x:443",
      ];
      for (const target of targets) {
        const res = await exchange(g, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
        assertMatch(res, /^HTTP\/1\.1 400 /);
      }
      assertEquals(up.received.length, 0);
      await g.gw.deps.accessLogs.flushAll();
      const log = await Deno.readTextFile(`${g.dir}/access.log`);
      assertOk(!log.includes("SECRET"), log);
      const lines = log.trimEnd().split("\n").map((l) => JSON.parse(l));
      assertEquals(lines.map((l) => [l.status, l.path]), [
        [400, "http://x/any?page=2"],
        [400, "http://x/any"],
        [400, "http://x"],
        [400, "x:443"],
      ]);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
});

Deno.test("a long password in a head refused while parsing is dropped before the target is cut", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    const g = await startGateway(
      refusingConfig("{ name: public, host: 127.0.0.1, port: 0 }", up.url),
    );
    try {
      // A bearer token as the password: past the 256 characters the log keeps.
      const secret = `SECRET${"s".repeat(1500)}`;
      const target = `http://user:${secret}@x/any?page=2`;
      // Refused by the head parser (an obsolete line folding; an unknown version), not the target.
      const folded = await exchange(g, `GET ${target} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n`);
      assertMatch(folded, /^HTTP\/1\.1 400 /);
      const lineOnly = await exchange(g, `GET ${target} HTTP/1.x\r\n\r\n`);
      assertMatch(lineOnly, /^HTTP\/1\.1 400 /);
      const longPath = `/${"p".repeat(300)}`;
      await exchange(g, `GET ${longPath}?page=2 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n`);
      await g.gw.deps.accessLogs.flushAll();
      const log = await Deno.readTextFile(`${g.dir}/access.log`);
      assertOk(!log.includes("SECRET"), log);
      const lines = log.trimEnd().split("\n").map((l) => JSON.parse(l));
      // Path and query each cut to 256 characters, as documented.
      assertEquals(lines.map((l) => [l.status, l.path]), [
        [400, "http://x/any?page=2"],
        [400, "http://x/any?page=2"],
        [400, `${longPath.slice(0, 256)}?page=2`],
      ]);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
});

Deno.test("on a node:https listener (mTLS, a TLS 1.3 floor) too: the common error shape, counted and logged", async () => {
  const up = startUpstream(() => new Response("ok"));
  const dir = await Deno.makeTempDir({ prefix: "gw-refused-tls13-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const g = await startGateway(refusingConfig(
      `{ name: public, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, min_version: "1.3" } }`,
      up.url,
    ));
    const caCerts = [await Deno.readTextFile(cert)];
    const port = Number(new URL(g.url()).port);
    const exchangeTls = async (bytes: string) => {
      const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts });
      await writeAllTo(conn, new TextEncoder().encode(bytes));
      return (await readUntilClose(conn, 15_000)).text;
    };
    try {
      const bad = await exchangeTls("GET /x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n");
      assertMatch(bad, /^HTTP\/1\.1 400 /);
      assertMatch(
        bad,
        /\r\n\r\n\{"error":\{"code":"bad_request","message":"The request is malformed/,
      );
      const tooLarge = await exchangeTls(
        `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${"y".repeat(70 * 1024)}\r\n\r\n`,
      );
      assertMatch(tooLarge, /^HTTP\/1\.1 431 /);
      assertMatch(tooLarge, /"code":"headers_too_large"/);
      // The head timeout applies here too (node's default is a minute, checked every 30 s).
      const started = performance.now();
      const slow = await exchangeTls("GET /slow HTTP/1.1\r\nHost: a\r\nX-Part: ");
      assertMatch(slow, /^HTTP\/1\.1 408 /);
      assertMatch(slow, /"code":"request_timeout"/);
      assertOk(
        performance.now() - started < 10_000,
        "the 300 ms head timeout, checked every second (node's own check: every 30 s)",
      );
      assertEquals(up.received.length, 0);

      await assertCountedOnce(g, ["bad_request", "headers_too_large", "request_timeout"]);
      await g.gw.deps.accessLogs.flushAll();
      const lines = (await Deno.readTextFile(`${g.dir}/access.log`)).trimEnd().split("\n")
        .map((l) => JSON.parse(l));
      assertEquals(lines.map((l) => [l.status, l.error_code, l.client_ip]), [
        [400, "bad_request", "127.0.0.1"],
        [431, "headers_too_large", "127.0.0.1"],
        [408, "request_timeout", "127.0.0.1"],
      ]);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
