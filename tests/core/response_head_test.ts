import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { parseHead, ProtocolError } from "../../lib/proxy/http1/response_head.ts";

const head = (fields: string) => `HTTP/1.1 200 OK\r\n${fields}`;

Deno.test("response head: a plain Content-Length is read", () => {
  assertEquals(parseHead(head("content-length: 42")).contentLength, 42);
  assertEquals(parseHead(head("content-length: 999999999999999")).contentLength, 999999999999999);
});

Deno.test("response head: a Content-Length repeating one value is tolerated", () => {
  assertEquals(parseHead(head("Content-Length: 7, 7")).contentLength, 7);
  assertEquals(parseHead(head("content-length: 7\r\ncontent-length: 7")).contentLength, 7);
});

Deno.test("response head: a malformed or conflicting Content-Length is a protocol error", () => {
  for (
    const fields of [
      "content-length: 7, 8",
      "content-length: -1",
      "content-length: 1e3",
      "content-length: 7\r\ncontent-length: 8",
      "content-length: 99999999999999999999",
      "content-length: 9007199254740993",
      "content-length: 1234567890123456, 1234567890123456",
    ]
  ) {
    assertThrows(() => parseHead(head(fields)), ProtocolError, fields);
  }
});

Deno.test("response head: malformed field lines are protocol errors, each with its reason", () => {
  const cases: [string, string][] = [
    ["no colon here", "Malformed header line"],
    [": empty name", "Malformed header line"],
    ["bad name: x", "Malformed header name"],
    ["x-a: ok\r\nx-b: bell\x07", "Invalid character in header value"],
    ["x-a: nul\x00", "Invalid character in header value"],
  ];
  for (const [fields, reason] of cases) {
    assertThrows(() => parseHead(head(fields)), ProtocolError, reason);
  }
});

Deno.test("response head: values lose surrounding spaces and tabs only, names are lower-cased", () => {
  const h = parseHead(head("X-Pad: \t a b \t\r\nX-Latin: \xa0x\xa0\r\nX-Empty:"));
  assertEquals(h.headers, [["x-pad", "a b"], ["x-latin", "\xa0x\xa0"], ["x-empty", ""]]);
});

Deno.test("response head: the status is HTTP/1.DIGIT, three digits, then a space or the end", () => {
  assertEquals(parseHead("HTTP/1.1 204\r\nx: 1").status, 204);
  assertEquals(parseHead("HTTP/1.0 404 Not Found").statusText, "Not Found");
  assertEquals(parseHead("HTTP/1.1 200 ").statusText, "");
  for (
    const line of [
      "HTTP/1.1 1e2 OK",
      "HTTP/1.1 20",
      "HTTP/1.1 099 X",
      "HTTP/2 200 OK",
      "HTTP/1.1 2000 OK",
      "HTTP/1.1 200OK",
      "HTTP/1.x 200 OK",
      "HTTP/1.1  200 OK",
    ]
  ) {
    assertThrows(() => parseHead(line), ProtocolError, line);
  }
});

Deno.test("response head: a reason phrase holds tabs, spaces, visible ASCII and obs-text only", () => {
  assertEquals(parseHead("HTTP/1.1 200 A\tB \xe9!").statusText, "A\tB \xe9!");
  for (const c of ["\x00", "\x01", "\x1f", "\x7f", "\r", "\n"]) {
    assertThrows(
      () => parseHead(`HTTP/1.1 200 A${c}B\r\ncontent-length: 2`),
      ProtocolError,
      JSON.stringify(c),
    );
  }
});

Deno.test("response head: Transfer-Encoding is one `chunked` or refused", () => {
  assertEquals(parseHead(head("Transfer-Encoding: Chunked")).chunked, true);
  const framed = parseHead(head("Transfer-Encoding: chunked\r\nContent-Length: 3"));
  assertEquals([framed.chunked, framed.contentLength, framed.close], [true, null, true]);
  for (
    const fields of [
      "Transfer-Encoding: gzip, chunked",
      "Transfer-Encoding: chunked, gzip",
      "Transfer-Encoding: chunked, chunked",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
      "Transfer-Encoding: gzip\r\nContent-Length: 3",
      "Transfer-Encoding: identity",
      "Transfer-Encoding: \r\nContent-Length: 2",
    ]
  ) {
    assertThrows(() => parseHead(head(fields)), ProtocolError, fields);
  }
});

Deno.test("response head: fields named by Connection are dropped, over repeated Connection fields", () => {
  const h = parseHead(
    head(
      "Connection: x-hop-a\r\nX-Hop-A: 1\r\nX-Hop-B: 2\r\nConnection: keep-alive, x-hop-b\r\nX-End: 3",
    ),
  );
  assertEquals(h.headers, [["x-end", "3"]]);
  assertEquals(h.close, false);
  assertEquals(parseHead(head("Connection: Close")).close, true);
  assertEquals(parseHead("HTTP/1.0 200 OK\r\nConnection: Keep-Alive").close, false);
  assertEquals(parseHead("HTTP/1.0 200 OK").close, true);
  assertEquals(parseHead(head("Connection: Upgrade\r\nUpgrade: websocket")).upgrade, true);
});
