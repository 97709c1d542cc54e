/**
 * The listener's request-head parser on its own: what it accepts, what it
 * refuses and with which code. The hostile suite (tests/security/) drives the
 * same rules through a running gateway.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import {
  isRefusal,
  parseRequestHead,
  type RequestHead,
} from "../../lib/server/http1/request_head.ts";

function head(...lines: string[]): string {
  return lines.join("\r\n");
}

function parsed(text: string): RequestHead {
  const h = parseRequestHead(text);
  if (isRefusal(h)) throw new Error(`refused: ${h.code} ${h.message}`);
  return h;
}

function refusedWith(text: string): string {
  const h = parseRequestHead(text);
  assertOk(isRefusal(h), `accepted: ${text}`);
  return isRefusal(h) ? h.code : "";
}

Deno.test("request head: framing, keep-alive and field lines", () => {
  const h = parsed(head(
    "POST /a?b=1 HTTP/1.1",
    "Host: example.com:8080",
    "Content-Length: 5",
    "X-Multi: one",
    "x-multi:  two\t",
    "Expect: 100-continue",
  ));
  assertEquals(h.method, "POST");
  assertEquals(h.target, "/a?b=1");
  assertEquals(h.host, "example.com:8080");
  assertEquals(h.contentLength, 5);
  assertEquals(h.chunked, false);
  assertEquals(h.keepAlive, true);
  assertEquals(h.expectContinue, true);
  assertEquals(h.headers.filter(([n]) => n === "x-multi").map(([, v]) => v), ["one", "two"]);
  // Optional whitespace is spaces and tabs: a no-break space (0xA0 in latin1) is part of the value.
  const ows = parsed(head("GET / HTTP/1.1", "Host: a", "X-Pad:\t \xa0v \xa0\t ", "X-Empty: \t"));
  assertEquals(ows.headers.slice(1), [["x-pad", "\xa0v \xa0"], ["x-empty", ""]]);
  assertEquals(
    refusedWith(head("GET / HTTP/1.1", "Host: a", "No colon here", "X: y:z")),
    "bad_request",
  );

  assertEquals(parsed(head("GET / HTTP/1.1", "Host: a", "Connection: close")).keepAlive, false);
  assertEquals(parsed(head("GET / HTTP/1.0")).keepAlive, false);
  assertEquals(parsed(head("GET / HTTP/1.0", "Connection: Keep-Alive")).keepAlive, true);
  assertEquals(
    parsed(head("GET / HTTP/1.0", "Connection: close", "Connection: keep-alive")).keepAlive,
    false,
  );
  // A tab is list whitespace as a space is.
  assertEquals(parsed(head("GET / HTTP/1.1", "Host: a", "Connection: x,\tclose")).keepAlive, false);
  assertEquals(parsed(head("GET / HTTP/1.0", "Connection: x,\tkeep-alive")).keepAlive, true);
  assertEquals(
    parsed(head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: Chunked")).chunked,
    true,
  );
  assertEquals(parsed(head("POST / HTTP/1.1", "Host: a", "Content-Length: 7, 7")).contentLength, 7);
  const upgrade = parsed(
    head("GET /ws HTTP/1.1", "Host: a", "Connection: Upgrade", "Upgrade: websocket"),
  );
  assertEquals(upgrade.upgrade, true);
  const tabbed = head(
    "GET /ws HTTP/1.1",
    "Host: a",
    "Connection: x,\tupgrade",
    "Upgrade: websocket",
  );
  assertEquals(parsed(tabbed).upgrade, true);
  assertEquals(parsed(head("GET / HTTP/1.1", "Host: a", "Connection: upgrade")).upgrade, false);
  // An HTTP/1.0 request's Upgrade is ignored (RFC 9110 §7.8).
  const http10 = head("GET /ws HTTP/1.0", "Connection: Upgrade", "Upgrade: websocket");
  assertEquals(parsed(http10).upgrade, false);
});

Deno.test("request head: raw bytes past ASCII in the target travel percent-encoded", () => {
  // The head is latin1-decoded: U+00EF is the byte 0xEF.
  assertEquals(parsed(head("GET /\u00ef\u00bc\u008e HTTP/1.1", "Host: a")).target, "/%EF%BC%8E");
});

Deno.test("request head: ambiguous or malformed heads are refused with a code", () => {
  const cases: [string, string][] = [
    [head("GET / HTTP/1.1"), "bad_request"], // no Host
    [head("GET / HTTP/1.1", "Host: a", "Host: b"), "bad_request"],
    [head("GET  / HTTP/1.1", "Host: a"), "bad_request"],
    [head("GET / HTTP/1.1 ", "Host: a"), "bad_request"],
    [head("G@T / HTTP/1.1", "Host: a"), "bad_request"],
    [head("GET / HTTP/2.0", "Host: a"), "http_version_not_supported"],
    [head("GET / HTTX/1.1", "Host: a"), "bad_request"],
    [head("GET * HTTP/1.1", "Host: a"), "bad_request"],
    [head("CONNECT a:443 HTTP/1.1", "Host: a"), "bad_request"],
    [head("GET /a\u0001 HTTP/1.1", "Host: a"), "bad_request"],
    [
      head("POST / HTTP/1.1", "Host: a", "Content-Length: 4", "Transfer-Encoding: chunked"),
      "bad_request",
    ],
    [head("POST / HTTP/1.1", "Host: a", "Content-Length: 4", "Content-Length: 5"), "bad_request"],
    [head("POST / HTTP/1.1", "Host: a", "Content-Length: 4, 40"), "bad_request"],
    [head("POST / HTTP/1.1", "Host: a", "Content-Length: +4"), "bad_request"],
    // 0xA0 is a value byte (obs-text), not optional whitespace around a length.
    [head("POST / HTTP/1.1", "Host: a", "Content-Length: 4,\xa04"), "bad_request"],
    [head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked"), "bad_request"],
    [head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, identity"), "bad_request"],
    [
      head(
        "POST / HTTP/1.1",
        "Host: a",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: chunked",
      ),
      "bad_request",
    ],
    [head("POST / HTTP/1.0", "Transfer-Encoding: chunked"), "bad_request"],
    [head("GET / HTTP/1.1", "Host: a", "Transfer-Encoding : chunked"), "bad_request"],
    [head("GET / HTTP/1.1", "Host: a", "X-A: b", " folded"), "bad_request"],
    [head("GET / HTTP/1.1", "Host: a", "X-A: b\u0000c"), "bad_request"],
    [head("GET / HTTP/1.1", "Host: a", "X-A: b\rc"), "bad_request"],
    [head("GET / HTTP/1.1", "Host: a", "NoColon"), "bad_request"],
    [head("PUT / HTTP/1.1", "Host: a", "Expect: 200-ok"), "expectation_failed"],
    [
      head("GET / HTTP/1.1", "Host: a", ...Array.from({ length: 200 }, (_, i) => `X-${i}: v`)),
      "headers_too_large",
    ],
  ];
  for (const [text, code] of cases) assertEquals(refusedWith(text), code, JSON.stringify(text));
});

Deno.test("request head: a bad field line is refused with what is wrong with it", () => {
  const message = (text: string) => {
    const h = parseRequestHead(text);
    return isRefusal(h) ? h.message : "accepted";
  };
  const start = "GET / HTTP/1.1\r\nHost: a\r\nX-Ok: 1\r\n";
  assertEquals(message(`${start}Bad Name: x`), "Malformed header name");
  assertEquals(message(`${start}X-Bell: a\x07b`), "Invalid character in header value");
  assertEquals(message(`${start}X-Nul: \x00`), "Invalid character in header value");
  assertEquals(message(`${start}X-Cr: a\rb`), "Invalid character in header value");
  assertEquals(message(`${start} folded`), "Obsolete line folding");
  assertEquals(message(`${start}: no name`), "Malformed header line");
  assertEquals(message(`${start}X-Obs-Text: caf\xe9\tok`), "accepted");
});
