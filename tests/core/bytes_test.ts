import { assertEquals } from "../helpers/assert.ts";
import { findHeadEnd, findLineEnd, toByteString } from "../../lib/proxy/http1/bytes.ts";

// The helpers jump between line feeds; these say byte by byte what they must find.
function headEndByBytes(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 3 < end; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function lineEndByBytes(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

/** A seeded generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

/** Bytes drawn mostly from CR, LF and one letter, so that line ends and near misses are common. */
function lineNoise(next: () => number, length: number): Uint8Array {
  const alphabet = [13, 10, 13, 10, 97, 0x80];
  return Uint8Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]!);
}

Deno.test("findHeadEnd and findLineEnd agree with a byte-by-byte search, bytes past `end` ignored", () => {
  const next = random(7);
  for (let n = 0; n < 5000; n++) {
    const buf = lineNoise(next, 1 + Math.floor(next() * 24));
    const from = Math.floor(next() * buf.length);
    const end = from + Math.floor(next() * (buf.length - from + 1));
    const at = `${[...buf]} from ${from} end ${end}`;
    assertEquals(findHeadEnd(buf, from, end), headEndByBytes(buf, from, end), at);
    assertEquals(findLineEnd(buf, from, end), lineEndByBytes(buf, from, end), at);
  }
});

Deno.test("findHeadEnd finds the blank line after a long bearer token", () => {
  const head = `GET / HTTP/1.1\r\nauthorization: Bearer ${"x".repeat(900)}\r\nhost: a\r\n\r\n`;
  const buf = new TextEncoder().encode(head + "GET / HTTP/1.1\r\n\r\n");
  assertEquals(findHeadEnd(buf, 0, buf.length), head.length - 4);
});

Deno.test("toByteString reads every byte as one latin1 char", () => {
  const cases = [
    [],
    [65, 66, 13, 10],
    [0xe9], // é in latin1; an invalid UTF-8 byte
    [0xc3, 0xa9], // é in UTF-8: two latin1 chars
    [0xef, 0xbf, 0xbd], // U+FFFD in UTF-8
    [0xef, 0xbb, 0xbf, 65], // a UTF-8 byte order mark, which a UTF-8 decoder would drop
    [0xf0, 0x9f, 0x98, 0x80], // one UTF-8 char as a surrogate pair
  ];
  for (const bytes of cases) {
    assertEquals(toByteString(Uint8Array.from(bytes)), String.fromCharCode(...bytes), `${bytes}`);
  }
  const next = random(11);
  for (let n = 0; n < 2000; n++) {
    const bytes = Uint8Array.from(
      { length: Math.floor(next() * 12) },
      () => Math.floor(next() * 256),
    );
    assertEquals(toByteString(bytes), String.fromCharCode(...bytes), `${[...bytes]}`);
  }
});
