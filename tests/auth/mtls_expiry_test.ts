/**
 * A client certificate that expires while its keep-alive connection is open:
 * the next request on that connection is refused, as a new connection
 * presenting it would be. The verdict on a connection's certificate is read
 * once, and again once a certificate of its chain has expired.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { readOneResponse } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";
import { ManualClock } from "../../lib/core/clock.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const fixture = (name: string) => Deno.readTextFile(new URL(name, FIXTURES));
const REQUEST = new TextEncoder().encode("GET /cn HTTP/1.1\r\nHost: gw\r\n\r\n");

Deno.test("mtls listener: a certificate that expires during a keep-alive connection stops admitting its requests", async () => {
  const [ca, clientCert, clientKey, serverCert, serverKey] = await Promise.all([
    fixture("ca.crt"),
    fixture("client.crt"),
    fixture("client.key"),
    fixture("server.crt"),
    fixture("server.key"),
  ]);
  // The CA expires at 2126-10-31 13:40:06, client.crt a second later (fixtures/make_certs.sh).
  const clock = new ManualClock(Date.now());
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(
    `listeners:
  - { name: m, host: 127.0.0.1, port: 0, tls: { cert: server.crt, key: server.key, client_ca: ca.crt, client_cert: required } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  cn: { kind: mtls, consumer_from: subject_cn }
consumers:
  - { id: team-a, subjects: [team-a] }
routes:
  - { name: cn, match: { path: /cn }, upstream: up, auth: [cn] }
`,
    { clock, files: { "server.crt": serverCert, "server.key": serverKey, "ca.crt": ca } },
  );
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: Number(new URL(g.url("m")).port),
    caCerts: [ca],
    cert: clientCert,
    key: clientKey,
  });
  try {
    const ask = async () => {
      await writeAllTo(conn, REQUEST);
      return await readOneResponse(conn);
    };
    assertMatch(await ask(), /^HTTP\/1\.1 200 /, "admitted while the certificate is valid");
    assertMatch(await ask(), /^HTTP\/1\.1 200 /, "and on the same connection again");

    // The CA has expired and the client's own certificate not yet: the chain no longer holds.
    clock.set(Date.parse("2126-10-31T13:40:06.500Z"));
    const late = await ask();
    assertMatch(late, /^HTTP\/1\.1 401 /, "refused once it has expired, on the same connection");
    assertMatch(late, /invalid_client_certificate/);
    assertMatch(late, /CERT_HAS_EXPIRED/);
    assertEquals(up.received.length, 2, "the upstream saw only the two admitted requests");
  } finally {
    closeQuietly(conn);
    await g.close();
    await up.close();
  }
});
