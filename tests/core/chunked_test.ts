/**
 * The chunked decoder both directions share (RFC 9112 §7.1): chunk-size lines
 * and trailer fields are checked whole. A request's malformed body is 400.
 */
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { ChunkedDecoder, takeBufferedChunked } from "../../lib/proxy/http1/body.ts";
import type { ReadBuffer } from "../../lib/proxy/http1/bytes.ts";
import { ProtocolError } from "../../lib/proxy/http1/response_head.ts";
import { proxyAllConfig, startGateway } from "../helpers/gateway.ts";
import { rawRequest } from "../helpers/raw.ts";
import { startUpstream } from "../helpers/upstream.ts";

/** A body whose bytes are all buffered already. */
function buffered(text: string): ReadBuffer {
  const buf = Uint8Array.from(text, (c) => c.charCodeAt(0));
  return {
    buf,
    start: 0,
    end: buf.length,
    fill: () => Promise.resolve(0),
    readInto: () => Promise.resolve(null),
  };
}

const decoded = (body: string) => new TextDecoder().decode(takeBufferedChunked(buffered(body))!);

const MALFORMED: Record<string, string> = {
  "space before the size": " 5\r\nhello\r\n0\r\n\r\n",
  "space after the size": "5 \r\nhello\r\n0\r\n\r\n",
  "tab after the size": "5\t\r\nhello\r\n0\r\n\r\n",
  "VT after the size": "5\x0b\r\nhello\r\n0\r\n\r\n",
  "FF before the size": "\x0c5\r\nhello\r\n0\r\n\r\n",
  "NBSP before the size": "\xa05\r\nhello\r\n0\r\n\r\n",
  "no size": ";a\r\nhello\r\n0\r\n\r\n",
  "0x prefix": "0x5\r\nhello\r\n0\r\n\r\n",
  "13 significant hex digits": "1000000000000\r\nhello\r\n0\r\n\r\n",
  "bare CR after the size": "5\r\r\nhello\r\n0\r\n\r\n",
  "bare LF in an extension": "5;a\nb\r\nhello\r\n0\r\n\r\n",
  "empty extension": "5;\r\nhello\r\n0\r\n\r\n",
  "extension without =value": "5;a=\r\nhello\r\n0\r\n\r\n",
  "space after an extension": "5;a \r\nhello\r\n0\r\n\r\n",
  "unterminated quoted value": '5;a="x\r\nhello\r\n0\r\n\r\n',
  "control byte in a quoted value": '5;a="x\x01"\r\nhello\r\n0\r\n\r\n',
  "trailer without a colon": "5\r\nhello\r\n0\r\nnot a field\r\n\r\n",
  "NUL in a trailer": "5\r\nhello\r\n0\r\nx-t: a\x00\r\n\r\n",
  "folded trailer": "5\r\nhello\r\n0\r\nx-t: a\r\n b\r\n\r\n",
  "trailer name with a space": "5\r\nhello\r\n0\r\nx t: a\r\n\r\n",
};

Deno.test("chunked: well-formed sizes, extensions and trailers decode", () => {
  assertEquals(decoded("5\r\nhello\r\n0\r\n\r\n"), "hello");
  assertEquals(decoded("A\r\n0123456789\r\n0\r\n\r\n"), "0123456789");
  assertEquals(decoded(`${"0".repeat(20)}5\r\nhello\r\n000\r\n\r\n`), "hello");
  // Leading zeros do not count against the 12 digits a size may have.
  assertEquals(new ChunkedDecoder(buffered(`0000${"f".repeat(12)}\r\n`)).framing(), true);
  assertEquals(decoded('5;a=b ; c = "q\\"x" ;d;e=\t"\xe9"\r\nhello\r\n0;z\r\n\r\n'), "hello");
  assertEquals(
    decoded("5\r\nhello\r\n0\r\nx-sum: 1\r\nx-empty:\r\nx-latin: \xe9\t.\r\n\r\n"),
    "hello",
  );
});

Deno.test("chunked: malformed chunk-size lines and trailer fields are protocol errors", () => {
  for (const [name, body] of Object.entries(MALFORMED)) {
    assertThrows(() => takeBufferedChunked(buffered(body)), ProtocolError, name);
  }
});

Deno.test("chunked: the trailer section is bounded at 64 KiB", () => {
  const lines = (n: number) => `x-t: ${"t".repeat(1000)}\r\n`.repeat(n);
  assertEquals(decoded(`5\r\nhello\r\n0\r\n${lines(60)}\r\n`), "hello");
  assertThrows(
    () => takeBufferedChunked(buffered(`5\r\nhello\r\n0\r\n${lines(70)}\r\n`)),
    ProtocolError,
    "Trailer section too large",
  );
  // Still arriving: refused once what is buffered is past the bound.
  const decoder = new ChunkedDecoder(buffered(`5\r\nhello\r\n0\r\n${"t".repeat(70_000)}`));
  assertThrows(() => {
    while (decoder.step() !== null);
  }, ProtocolError);
});

Deno.test("chunked: a request's malformed chunk-size line or trailer is 400", async () => {
  // Reads the body before answering, as the echo does, quietly when the gateway breaks it off.
  const up = startUpstream(async (req) => {
    const bytes = await req.arrayBuffer().catch(() => null);
    return Response.json({ body_bytes: bytes?.byteLength ?? -1 });
  });
  const g = await startGateway(proxyAllConfig(up.url));
  const post = [
    "POST /p HTTP/1.1",
    "Host: localhost",
    "Connection: close",
    "Transfer-Encoding: chunked",
  ];
  try {
    for (const [name, body] of Object.entries(MALFORMED)) {
      const res = await rawRequest(g.url(), post, body);
      assertEquals(res.status, 400, name);
      assertEquals(JSON.parse(res.body).error.code, "bad_request", name);
    }
    const fine = await rawRequest(g.url(), post, "5;a=b\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n");
    assertEquals([fine.status, JSON.parse(fine.body).body_bytes], [200, 5]);
  } finally {
    await g.close();
    await up.close();
  }
});
