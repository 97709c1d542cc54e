import { assertEquals } from "../helpers/assert.ts";
import { parseProxyHeader } from "../../lib/server/proxy_protocol/parse.ts";
import { proxyV2 } from "./proxy_bytes.ts";

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("parseProxyHeader() reads version 1 headers", () => {
  const cases: [string, string, ReturnType<typeof parseProxyHeader>][] = [
    [
      "TCP4",
      "PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET /",
      {
        kind: "ok",
        version: 1,
        length: 43,
        source: { hostname: "203.0.113.7", port: 56324 },
      },
    ],
    [
      "TCP6",
      "PROXY TCP6 2001:db8::7 2001:db8::1 40000 8080\r\n",
      {
        kind: "ok",
        version: 1,
        length: 47,
        source: { hostname: "2001:db8::7", port: 40000 },
      },
    ],
    ["UNKNOWN", "PROXY UNKNOWN\r\n", { kind: "ok", version: 1, length: 15, source: null }],
    ["partial", "PROXY TCP4 203.0.11", { kind: "incomplete" }],
    ["partial prefix", "PROX", { kind: "incomplete" }],
    [
      "family mismatch",
      "PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
      { kind: "invalid", reason: "PROXY v1 header: addresses do not match TCP4" },
    ],
    [
      "bad port",
      "PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",
      { kind: "invalid", reason: "PROXY v1 header: bad port" },
    ],
    [
      "missing field",
      "PROXY TCP4 203.0.113.7 10.0.0.1 443\r\n",
      { kind: "invalid", reason: "PROXY v1 header: expected 6 fields" },
    ],
    [
      "unknown protocol",
      "PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
      { kind: "invalid", reason: 'PROXY v1 header: unknown protocol "UDP4"' },
    ],
    [
      "plain HTTP",
      "GET / HTTP/1.1\r\n",
      { kind: "invalid", reason: "the connection did not start with a PROXY protocol header" },
    ],
    [
      "no CRLF within 107 bytes",
      "PROXY TCP4 " + "1".repeat(120),
      { kind: "invalid", reason: "PROXY v1 header longer than 107 bytes" },
    ],
  ];
  for (const [name, input, expected] of cases) {
    assertEquals(parseProxyHeader(text(input)), expected, name);
  }
});

Deno.test("parseProxyHeader() reads version 2 headers", () => {
  const v4 = proxyV2({ hostname: "198.51.100.9", port: 1234 }, { hostname: "10.0.0.1", port: 80 });
  assertEquals(parseProxyHeader(v4), {
    kind: "ok",
    version: 2,
    length: 28,
    source: { hostname: "198.51.100.9", port: 1234 },
  });
  const v6 = proxyV2({ hostname: "2001:db8::42", port: 65535 }, { hostname: "::1", port: 80 });
  assertEquals(parseProxyHeader(v6), {
    kind: "ok",
    version: 2,
    length: 52,
    source: { hostname: "2001:db8::42", port: 65535 },
  });
  // TLVs after the addresses are skipped by the length field.
  const tlv = proxyV2({ hostname: "198.51.100.9", port: 1 }, { hostname: "10.0.0.1", port: 2 }, [
    0x04,
    0x00,
    0x02,
    0xab,
    0xcd,
  ]);
  const withData = new Uint8Array([...tlv, ...text("GET /")]);
  const parsed = parseProxyHeader(withData);
  assertEquals(parsed.kind === "ok" ? parsed.length : -1, 33);
  // Byte by byte, every strict prefix is incomplete.
  for (let i = 1; i < v4.length; i++) {
    assertEquals(parseProxyHeader(v4.subarray(0, i)).kind, "incomplete", `prefix ${i}`);
  }
});

Deno.test("parseProxyHeader() treats LOCAL, UNSPEC and bad v2 headers right", () => {
  const local = proxyV2(null, null);
  assertEquals(parseProxyHeader(local), { kind: "ok", version: 2, length: 16, source: null });
  const badVersion = proxyV2({ hostname: "1.2.3.4", port: 1 }, { hostname: "1.2.3.5", port: 2 });
  badVersion[12] = 0x31;
  assertEquals(parseProxyHeader(badVersion), {
    kind: "invalid",
    reason: "PROXY v2 header: unsupported version 3",
  });
  const badFamily = proxyV2({ hostname: "1.2.3.4", port: 1 }, { hostname: "1.2.3.5", port: 2 });
  badFamily[13] = 0x41;
  assertEquals(parseProxyHeader(badFamily), {
    kind: "invalid",
    reason: "PROXY v2 header: unknown address family 0x41",
  });
  const unspec = proxyV2({ hostname: "1.2.3.4", port: 1 }, { hostname: "1.2.3.5", port: 2 });
  unspec[13] = 0x00;
  assertEquals(parseProxyHeader(unspec), { kind: "ok", version: 2, length: 28, source: null });
});
