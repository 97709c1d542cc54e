import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { parseHead, ProtocolError } from "../../lib/proxy/http1/response_head.ts";

const head = (fields: string) => `HTTP/1.1 200 OK\r\n${fields}`;

Deno.test("response head: a plain Content-Length is read", () => {
  assertEquals(parseHead(head("content-length: 42")).contentLength, 42);
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
    ]
  ) {
    assertThrows(() => parseHead(head(fields)), ProtocolError, fields);
  }
});
