/**
 * An upstream's static `headers:` may not set what frames or routes the message
 * (a `Transfer-Encoding` there would tell the upstream to read a body the
 * gateway frames otherwise), nor, while the gateway traces, the trace fields it
 * writes itself; a config error names the key, and a valid one is sent.
 */
import { assertEquals } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { configErrors } from "./helpers.ts";

Deno.test("upstream headers: framing and routing fields are refused at their key", async () => {
  assertEquals(
    await configErrors(`upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    headers:
      X-Team: payments
      Transfer-Encoding: chunked
      host: other.example
routes:
  - { name: r, match: { path: / }, upstream: users }
`),
    [
      'gateway.yaml:6:7: upstreams.users.headers.Transfer-Encoding: key "Transfer-Encoding": expected a header the gateway does not own (Transfer-Encoding frames or routes the message)',
      'gateway.yaml:7:7: upstreams.users.headers.host: key "host": expected a header the gateway does not own (host frames or routes the message)',
    ],
  );
});

Deno.test("upstream headers: trace fields are refused while the gateway traces", async () => {
  assertEquals(
    await configErrors(`upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    headers: { Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }
routes:
  - { name: r, match: { path: / }, upstream: users }
`),
    [
      "gateway.yaml:4:16: upstreams.users.headers.Traceparent: Traceparent is the gateway's own while observe.tracing.enabled is true (set it to false to pass the caller's trace fields on unchanged)",
    ],
  );
});

Deno.test("upstream headers: with tracing off a static traceparent is one more field, sent once", async () => {
  const seen: string[][] = [];
  const up = startUpstream((req) => {
    seen.push([...req.headers].filter(([k]) => k === "traceparent" || k === "x-team").flat());
    return new Response("ok");
  });
  const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const g = await startGateway(baseConfig(`observe: { tracing: { enabled: false } }
upstreams:
  users:
    targets: [ { url: "${up.url}" } ]
    headers: { traceparent: "${tp}", X-Team: payments }
routes:
  - { name: r, match: { path: / }, upstream: users }
`));
  try {
    const res = await fetch(`${g.url()}/x`, {
      headers: { traceparent: "00-11111111111111111111111111111111-2222222222222222-01" },
    });
    assertEquals(await res.text(), "ok");
    assertEquals(seen, [["traceparent", tp, "x-team", "payments"]]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("upstream headers: a value goes out as UTF-8, whatever its characters", async () => {
  // As the consumers' headers and the transforms' text do: `José` was sent as `4a 6f 73 e9`
  // (one Latin-1 byte for é) while `東京` went as UTF-8, two encodings in one config.
  const heads: string[] = [];
  const up = startRawUpstream(async (x) => {
    heads.push(x.head);
    await x.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  });
  const g = await startGateway(baseConfig(`upstreams:
  users:
    targets: [ { url: "${up.url}" } ]
    headers: { X-Name: "José", X-City: "東京", X-Plain: payments }
routes:
  - { name: r, match: { path: / }, upstream: users }
`));
  try {
    assertEquals(await (await fetch(`${g.url()}/x`)).text(), "ok");
    const fields = heads[0]!.split("\r\n").filter((l) => /^x-(name|city|plain):/.test(l));
    const utf8 = (text: string) => String.fromCharCode(...new TextEncoder().encode(text));
    assertEquals(fields, [
      `x-name: ${utf8("José")}`,
      `x-city: ${utf8("東京")}`,
      "x-plain: payments",
    ]);
  } finally {
    await g.close();
    up.close();
  }
});

Deno.test("upstream headers: X-Forwarded-*, Via and the request id are refused at their key", async () => {
  // The gateway writes them on every request: a static copy went out beside its own.
  assertEquals(
    await configErrors(`server: { request_id_header: X-Trace-Id }
upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    headers:
      X-Forwarded-Proto: https
      x-forwarded-for: 10.0.0.1
      X-Forwarded-Host: a.example
      Via: 1.1 corp
      X-Trace-Id: fixed
      X-Request-Id: fine
      X-Real-IP: 10.0.0.2
routes:
  - { name: r, match: { path: / }, upstream: users }
`),
    [
      "gateway.yaml:6:7: upstreams.users.headers.X-Forwarded-Proto: X-Forwarded-Proto is the gateway's own: it writes it on every request it sends upstream",
      "gateway.yaml:7:7: upstreams.users.headers.x-forwarded-for: x-forwarded-for is the gateway's own: it writes it on every request it sends upstream",
      "gateway.yaml:8:7: upstreams.users.headers.X-Forwarded-Host: X-Forwarded-Host is the gateway's own: it writes it on every request it sends upstream",
      "gateway.yaml:9:7: upstreams.users.headers.Via: Via is the gateway's own: it writes it on every request it sends upstream",
      "gateway.yaml:10:7: upstreams.users.headers.X-Trace-Id: X-Trace-Id is the gateway's own: it writes it on every request it sends upstream (server.request_id_header)",
    ],
  );
});
