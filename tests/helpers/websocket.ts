/** A WebSocket client on a raw connection: the handshake and short frames, by hand. */
import { assertEquals, assertMatch, within } from "./assert.ts";
import { writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

/**
 * An upgrade request with RFC 6455's example key (its accept:
 * s3pPLMBiTxaQ9kYGzzhZRbK+xOo=), and `extra` field lines.
 */
export const HANDSHAKE = (path: string, extra: string[] = []) =>
  [
    `GET ${path} HTTP/1.1`,
    "Host: localhost",
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...extra,
    "",
    "",
  ].join("\r\n");

/** A client's text frame (masked, under 126 bytes). */
export function clientFrame(text: string, opcode = 0x1): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const mask = [0x12, 0x34, 0x56, 0x78];
  return new Uint8Array([
    0x80 | opcode,
    0x80 | payload.length,
    ...mask,
    ...payload.map((b, i) => b ^ mask[i % 4]!),
  ]);
}

/** Reads from `conn` until `buf` holds `n` bytes past `have`. */
async function readAtLeast(conn: Deno.Conn, have: Uint8Array, n: number): Promise<Uint8Array> {
  let out: Uint8Array = have;
  const chunk = new Uint8Array(4096);
  while (out.length < n) {
    const got = await conn.read(chunk);
    if (got === null) throw new Error(`connection ended after ${out.length} of ${n} bytes`);
    out = new Uint8Array([...out, ...chunk.subarray(0, got)]);
  }
  return out;
}

/**
 * The 101 head, then the server's (unmasked, short) text frames, `count` of
 * them, after sending `send`; throws if that takes over 5 s.
 */
export async function switchAndRead(conn: Deno.Conn, send: Uint8Array[], count: number) {
  const got = await within(5_000, exchangeFrames(conn, send, count));
  if (got === "timed out") throw new Error("no switch, or no answer to the frames, within 5 s");
  return got;
}

async function exchangeFrames(conn: Deno.Conn, send: Uint8Array[], count: number) {
  let buf: Uint8Array = new Uint8Array(0);
  let headEnd = -1;
  while (headEnd < 0) {
    buf = await readAtLeast(conn, buf, buf.length + 1);
    headEnd = new TextDecoder().decode(buf).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(buf.subarray(0, headEnd));
  for (const frame of send) await writeAllTo(conn, frame);
  let rest: Uint8Array = buf.subarray(headEnd + 4);
  const messages: string[] = [];
  while (messages.length < count) {
    rest = await readAtLeast(conn, rest, 2);
    const len = rest[1]! & 0x7f;
    rest = await readAtLeast(conn, rest, 2 + len);
    messages.push(new TextDecoder().decode(rest.subarray(2, 2 + len)));
    rest = rest.subarray(2 + len);
  }
  return { head, messages };
}

/**
 * Opens a WebSocket on `conn` to `/ws` (with `extra` field lines in the
 * handshake) of an upstream that answers each text message with `echo:` and
 * the message: checks the switch, the accept for the client's key, and two
 * messages both ways.
 */
export async function assertEchoes(conn: Deno.Conn, extra: string[] = []): Promise<void> {
  await writeAllTo(conn, new TextEncoder().encode(HANDSHAKE("/ws", extra)));
  const { head, messages } = await switchAndRead(conn, [clientFrame("one"), clientFrame("two")], 2);
  assertMatch(head, /^HTTP\/1\.1 101 /);
  assertMatch(head, /\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/i);
  assertEquals(messages, ["echo:one", "echo:two"]);
}
