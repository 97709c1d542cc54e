/**
 * A small upstream body is held as a byte string until something reads it:
 * every way of reading it must give what a plain Response over the same
 * bytes gives, and the bytes must reach clients unchanged on every listener.
 */
import { assertEquals, assertOk, assertRejects, assertThrows } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { bodyOf, forRuntime, ParsedResponse } from "../../lib/core/parsed_response.ts";
import { toByteString } from "../../lib/proxy/http1/bytes.ts";

/** Every byte value, then UTF-8 text past ASCII: what a latin1 slip would garble. */
const BYTES = new Uint8Array([
  ...Array.from({ length: 256 }, (_, i) => i),
  ...new TextEncoder().encode('{"name":"Zoë","city":"Kraków"}'),
]);
const JSON_BYTES = new TextEncoder().encode('{"name":"Zoë","city":"Kraków"}');

function held(bytes: Uint8Array, type = "application/octet-stream"): ParsedResponse {
  return new ParsedResponse(toByteString(bytes), { status: 200, statusText: "OK" }, [
    ["content-type", type],
    ["x-upstream", "a"],
  ]);
}

Deno.test("a held body reads as the same bytes through every body method", async () => {
  assertEquals(new Uint8Array(await held(BYTES).bytes()), BYTES);
  assertEquals(new Uint8Array(await held(BYTES).arrayBuffer()), BYTES);
  const blob = await held(BYTES).blob();
  assertEquals(blob.type, "application/octet-stream");
  assertEquals(new Uint8Array(await blob.arrayBuffer()), BYTES);
  assertEquals(await held(JSON_BYTES).json(), { name: "Zoë", city: "Kraków" });
  assertEquals(await held(JSON_BYTES).text(), '{"name":"Zoë","city":"Kraków"}');
  const streamed = await new Response(held(BYTES).body).bytes();
  assertEquals(streamed, BYTES);
  const form = await held(
    new TextEncoder().encode("a=1&b=%C3%A9"),
    "application/x-www-form-urlencoded",
  )
    .formData();
  assertEquals(form.get("b"), "é");
});

Deno.test("a held body is read once, as a plain Response's is", async () => {
  const res = held(BYTES);
  assertEquals(res.bodyUsed, false);
  await res.bytes();
  assertEquals(res.bodyUsed, true);
  await assertRejects(() => res.text(), TypeError);
  assertThrows(() => res.clone(), TypeError);
  assertEquals(ParsedResponse.held(res), null, "a body something read is no longer held");
});

Deno.test("a clone of a held body has its own copy, and the parsed fields", async () => {
  const res = held(BYTES);
  const copy = res.clone();
  assertEquals(copy.headers.get("x-upstream"), "a");
  assertEquals(copy.status, 200);
  assertEquals(await copy.bytes(), BYTES);
  assertEquals(await res.bytes(), BYTES);
});

Deno.test("a clone of a response with bytes or a stream keeps the parsed fields too", async () => {
  for (const body of [BYTES, new Response(BYTES).body!]) {
    const res = new ParsedResponse(body, { status: 201 }, [["x-upstream", "a"]]);
    const copy = res.clone();
    assertEquals(copy.headers.get("x-upstream"), "a");
    assertEquals([copy.status, await copy.bytes()], [201, BYTES]);
    assertEquals(await res.bytes(), BYTES);
  }
});

Deno.test("bodyOf gives a held body as bytes and leaves the response unread", async () => {
  const res = held(BYTES);
  assertEquals(bodyOf(res), BYTES);
  assertEquals(res.bodyUsed, false);
  assertEquals(await res.bytes(), BYTES);
  assertEquals(bodyOf(new Response(null)), null);
});

Deno.test("forRuntime hands Deno.serve a plain Response with the fields and the bytes", async () => {
  const unread = forRuntime(held(BYTES));
  assertOk(!(unread instanceof ParsedResponse));
  assertEquals(unread.headers.get("x-upstream"), "a");
  assertEquals(await unread.bytes(), BYTES);
  // Once something made the body a stream, the runtime gets the body from there.
  const partly = held(BYTES);
  assertOk(partly.body !== null);
  assertEquals(await forRuntime(partly).bytes(), BYTES);
});

Deno.test("small bodies reach clients byte for byte through plain and TLS listeners", async () => {
  const sizes = [0, 1, BYTES.length, 2048, 2049, 5000];
  const up = startUpstream((req) => {
    const n = Number(new URL(req.url).pathname.slice(1));
    const body = new Uint8Array(n).map((_, i) => BYTES[i % BYTES.length]!);
    return new Response(body, { headers: { "content-type": "application/octet-stream" } });
  });
  const fixtures = new URL("../deploy/fixtures/", import.meta.url).pathname;
  const g = await startGateway(`listeners:
  - { name: plain, host: 127.0.0.1, port: 0 }
  - name: secure
    host: 127.0.0.1
    port: 0
    tls: { cert: "${fixtures}server.crt", key: "${fixtures}server.key" }
  - name: h2
    host: 127.0.0.1
    port: 0
    tls: { cert: "${fixtures}server.crt", key: "${fixtures}server.key", http2: true }
${baseConfig("").split("\n").slice(2).join("\n")}
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a }
`);
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${fixtures}ca.crt`)] });
  try {
    // The TLS listener with HTTP/2 is Deno.serve's, which gets its responses through forRuntime.
    for (const listener of ["plain", "secure", "h2"]) {
      for (const n of sizes) {
        const res = await fetch(`${g.url(listener)}/${n}`, { client });
        const got = await res.bytes();
        const want = new Uint8Array(n).map((_, i) => BYTES[i % BYTES.length]!);
        assertEquals(res.status, 200);
        assertEquals(res.headers.get("content-length"), String(n), `${listener} ${n}`);
        assertEquals(got, want, `${listener}: ${n} bytes`);
        const head = await fetch(`${g.url(listener)}/${n}`, { method: "HEAD", client });
        await head.body?.cancel();
        assertEquals(head.headers.get("content-length"), String(n), `${listener} HEAD ${n}`);
      }
    }
  } finally {
    client.close();
    await g.close();
    await up.close();
  }
});
