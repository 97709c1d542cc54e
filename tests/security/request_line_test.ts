/**
 * Methods and request targets as the gateway's own listener takes them. It
 * builds no web Request for a proxied request, so it checks itself what the
 * Request constructor would refuse, and normalises methods as it would.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { rawRequest, readUntilClose } from "../helpers/raw.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: reads, match: { path: /r, methods: [GET, HEAD] }, upstream: app }
  - { name: all, match: { path: / }, upstream: app }
`;

const request = (line: string, host = "localhost") => [line, `Host: ${host}`, "Connection: close"];

Deno.test("get and head in any case are GET and HEAD, as the Fetch standard reads them", async () => {
  await withRig(config, async ({ g, up }) => {
    const get = await rawRequest(g.url(), request("get /r/1 HTTP/1.1"));
    assertEquals(get.status, 200, get.raw);
    assertEquals(JSON.parse(get.body).method, "GET");

    const head = await rawRequest(g.url(), request("hEaD /r/2 HTTP/1.1"));
    assertEquals(head.status, 200, head.raw);
    assertEquals(head.body, "", "a HEAD response carries no body");
    assertEquals(up.received.map((r) => [r.method, r.url]), [["GET", "/r/1"], ["HEAD", "/r/2"]]);

    // PATCH is not among the six: a lower-case patch stays an extension method.
    const patch = await rawRequest(g.url(), request("patch /r/3 HTTP/1.1"));
    assertEquals(patch.status, 200, patch.raw);
    assertEquals(up.received.at(-1)!.method, "patch");
  });
});

Deno.test("a HEAD the listener refuses gets the refusal's head without its body", async () => {
  // RFC 9110 §9.3.2: no content in an answer to HEAD, refusals included. A client reading it as
  // HEAD takes the body bytes for the start of the next answer.
  await withRig(config, async ({ g, up }) => {
    const cases: [string, string[]][] = [
      ["Host the URL parser refuses", request("HEAD /r HTTP/1.1", "localhost:99999")],
      ["userinfo in Host, lower-case head", request("head /r HTTP/1.1", "a@localhost")],
      ["malformed field line", [...request("HEAD /r HTTP/1.1"), "Bad Name: x"]],
      ["no Host", ["HEAD /r HTTP/1.1", "Connection: close"]],
    ];
    for (const [what, head] of cases) {
      const res = await rawRequest(g.url(), head);
      assertEquals([res.status, res.body], [400, ""], `${what}: ${res.raw}`);
      assertOk(Number(res.headers.get("content-length")) > 0, `${what}: the length a GET gets`);
    }
    const get = await rawRequest(g.url(), ["GET /r HTTP/1.1", "Connection: close"]);
    assertEquals(JSON.parse(get.body).error.message, "Missing Host header", "a GET gets the body");
    assertEquals(up.received.length, 0);
  });
});

Deno.test("CONNECT, TRACE and TRACK are refused in the JSON shape and never forwarded", async () => {
  await withRig(config, async ({ g, up }) => {
    for (const method of ["TRACE", "trace", "TRACK", "CONNECT"]) {
      const res = await rawRequest(g.url(), request(`${method} /x HTTP/1.1`));
      assertEquals(res.status, 400, res.raw);
      const body = JSON.parse(res.body);
      assertEquals(body.error.code, "bad_request");
      assertEquals(body.error.message, `${method} requests are not served`);
    }
    assertEquals(up.received.length, 0);
  });
});

Deno.test("a target the URL parser refuses is a 400, checked again when the Host changes", async () => {
  await withRig(config, async ({ g, up }) => {
    const cases: [string, string][] = [
      ["GET /x HTTP/1.1", "localhost:99999"], // port out of range
      ["GET /x HTTP/1.1", "999.1.1.1"], // not an IPv4 address
      ["GET http://user:secret@localhost/x HTTP/1.1", "localhost"], // credentials
      ["GET http://localhost:70000/x HTTP/1.1", "localhost"],
    ];
    for (const [line, host] of cases) {
      const res = await rawRequest(g.url(), request(line, host));
      assertEquals(res.status, 400, `${line} / ${host}: ${res.raw}`);
      assertEquals(JSON.parse(res.body).error.message, "Malformed request target");
    }

    // One connection: a good Host, then a bad one. The second is not let through
    // on the strength of the first.
    const u = new URL(g.url());
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    await conn.write(new TextEncoder().encode(
      "GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n" +
        "GET /bad HTTP/1.1\r\nHost: localhost:99999\r\n\r\n",
    ));
    // The refusal closes the connection; 10 s only bounds a wait that went wrong.
    const { text } = await readUntilClose(conn, 10_000);
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assertEquals(statuses, [200, 400], text);
    assertOk(text.includes("Malformed request target"));
    assertEquals(up.received.map((r) => r.url), ["/ok"]);
  });
});

Deno.test("a later HTTP/1.x minor is served as HTTP/1.1; another major gets 505", async () => {
  await withRig(config, async ({ g, up }) => {
    // RFC 9110 §2.5; until 2026-12-07 HTTP/1.2 got a 505.
    const later = await rawRequest(g.url(), request("GET /r/1 HTTP/1.2"));
    assertEquals(later.status, 200, later.raw);
    assertOk(later.raw.startsWith("HTTP/1.1 200"), later.raw);
    assertEquals(up.received.map((r) => r.url), ["/r/1"]);
    const two = await rawRequest(g.url(), request("GET /r/2 HTTP/2.0"));
    assertEquals(two.status, 505, two.raw);
    assertEquals(up.received.length, 1);
  });
});
