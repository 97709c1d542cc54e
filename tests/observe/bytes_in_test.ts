/**
 * `bytes_in` and `gateway_request_bytes_total` count the request body bytes
 * that arrived, on every kind of listener: not the length the client declared,
 * which can be anything.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { parseResponse, readOneResponse } from "../helpers/raw.ts";
import { parsePromText, samplesOf } from "./prom_text.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const enc = new TextEncoder();

Deno.test("bytes in: a declared length that never arrives is not counted; a body that does is", async () => {
  const up = startUpstream(async (req) =>
    new Response(`got ${(await req.arrayBuffer()).byteLength}`)
  );
  const dir = await Deno.makeTempDir({ prefix: "gw-bytes-in-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const caCerts = [await Deno.readTextFile(cert)];
    const g = await startGateway(`listeners:
  - { name: plain, host: 127.0.0.1, port: 0 }
  - { name: tls13, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, min_version: "1.3" } }
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
observe: { access_log: { path: access.log } }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - { name: small, match: { path: /small }, upstream: up, limits: { max_body_bytes: 1024 } }
  - { name: echo, match: { path: /echo }, upstream: up }
`);
    try {
      const port = (name: string) => Number(new URL(g.url(name)).port);
      const connect: Record<string, () => Promise<Deno.Conn>> = {
        plain: () => Deno.connect({ hostname: "127.0.0.1", port: port("plain") }),
        tls13: () => Deno.connectTls({ hostname: "localhost", port: port("tls13"), caCerts }),
      };
      const exchange = async (kind: string, request: string) => {
        const conn = await connect[kind]!();
        try {
          await writeAllTo(conn, enc.encode(request));
          return parseResponse(await readOneResponse(conn));
        } finally {
          closeQuietly(conn);
        }
      };
      const metric = async (route: string) =>
        samplesOf(
          parsePromText(await (await fetch(`${g.admin}/metrics`)).text()),
          "gateway_request_bytes_total",
        ).find((s) => s.labels.route === route)?.value ?? 0;
      for (const kind of ["plain", "tls13"]) {
        const before = { small: await metric("small"), echo: await metric("echo") };
        // A terabyte declared, three bytes sent: refused by the body limit, unread.
        const refused = await exchange(
          kind,
          "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\nabc",
        );
        assertEquals(refused.status, 413, kind);
        const counted = await metric("small") - before.small;
        assertOk(counted <= 3, `${kind}: ${counted} bytes counted for 3 sent`);
        // A body that arrives whole is counted whole.
        const echoed = await exchange(
          kind,
          "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabcdef",
        );
        assertEquals([echoed.status, echoed.body], [200, "got 6"], kind);
        assertEquals(await metric("echo") - before.echo, 6, kind);
      }
      await g.gw.deps.accessLogs.flushAll();
      const lines = (await Deno.readTextFile(`${g.dir}/access.log`)).trimEnd().split("\n")
        .map((l) => JSON.parse(l));
      const bytesIn = lines.map((
        l,
      ) => [l.listener, l.route, l.status, l.bytes_in <= 6 ? l.bytes_in : "too many"]);
      assertEquals(bytesIn.map(([l, r, s, b]) => [l, r, s, r === "small" ? b !== "too many" : b]), [
        ["plain", "small", 413, true],
        ["plain", "echo", 200, 6],
        ["tls13", "small", 413, true],
        ["tls13", "echo", 200, 6],
      ]);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
