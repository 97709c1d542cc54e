/** A WebSocket client on a raw connection: the handshake and short frames, by hand. */
import { assertEquals, assertMatch, within } from "./assert.ts";
import { writeAllTo } from "../../lib/proxy/http1/socket_io.ts";
import { startUpstream, type TestServer } from "./upstream.ts";

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

/** RFC 6455's accept for a key. */
export async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** A frame of any size: masked as a client sends it, or not as a server does. */
export function wsFrame(
  payload: Uint8Array,
  o: { opcode?: number; fin?: boolean; masked?: boolean } = {},
): Uint8Array {
  const masked = o.masked ?? true;
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const start = 2 + lengthBytes + (masked ? 4 : 0);
  const out = new Uint8Array(start + n);
  out[0] = ((o.fin ?? true) ? 0x80 : 0) | (o.opcode ?? 0x2);
  const view = new DataView(out.buffer);
  out[1] = (masked ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) view.setUint16(2, n);
  if (lengthBytes === 8) view.setBigUint64(2, BigInt(n));
  const mask = [0x12, 0x34, 0x56, 0x78];
  if (masked) out.set(mask, start - 4);
  for (let i = 0; i < n; i++) out[start + i] = masked ? payload[i]! ^ mask[i % 4]! : payload[i]!;
  return out;
}

/** A close frame's payload: the code and the reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const text = new TextEncoder().encode(reason);
  const out = new Uint8Array(2 + text.length);
  new DataView(out.buffer).setUint16(0, code);
  out.set(text, 2);
  return out;
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Uint8Array;
}

/** Reads frames (a head first, when asked) from a raw connection. */
export class FrameReader {
  private buf = new Uint8Array(0);
  constructor(private readonly conn: Deno.Conn) {}

  /** Bytes up to a blank line: the 101 or other answer's head. */
  async head(): Promise<string> {
    while (true) {
      const end = new TextDecoder().decode(this.buf).indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = new TextDecoder().decode(this.buf.subarray(0, end));
        this.buf = this.buf.slice(end + 4);
        return head;
      }
      await this.more();
    }
  }

  /** The next frame; throws when the connection ends first. */
  async next(): Promise<Frame> {
    await this.need(2);
    let length = this.buf[1]! & 0x7f;
    let at = 2;
    if (length === 126) {
      await this.need(4);
      length = new DataView(this.buf.buffer, this.buf.byteOffset).getUint16(2);
      at = 4;
    } else if (length === 127) {
      await this.need(10);
      length = Number(new DataView(this.buf.buffer, this.buf.byteOffset).getBigUint64(2));
      at = 10;
    }
    const masked = (this.buf[1]! & 0x80) !== 0;
    const start = at + (masked ? 4 : 0);
    await this.need(start + length);
    const payload = this.buf.slice(start, start + length);
    if (masked) { for (let i = 0; i < length; i++) payload[i]! ^= this.buf[at + (i % 4)]!; }
    const frame = { fin: (this.buf[0]! & 0x80) !== 0, opcode: this.buf[0]! & 0x0f, payload };
    this.buf = this.buf.slice(start + length);
    return frame;
  }

  /** Frames until the connection ends (after a close frame, say), the last one included. */
  async rest(): Promise<Frame[]> {
    const frames: Frame[] = [];
    try {
      while (true) frames.push(await this.next());
    } catch {
      return frames;
    }
  }

  private async need(n: number): Promise<void> {
    while (this.buf.length < n) await this.more();
  }

  private async more(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    const got = await this.conn.read(chunk);
    if (got === null) throw new Error("connection ended");
    const joined = new Uint8Array(this.buf.length + got);
    joined.set(this.buf);
    joined.set(chunk.subarray(0, got), this.buf.length);
    this.buf = joined;
  }
}

export interface RawWsUpstream {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Request heads received, in order. */
  readonly heads: string[];
  connections(): number;
  /** Closes the listener and every connection, and waits for their sessions to end. */
  close(): Promise<void>;
}

/**
 * An upstream on raw TCP that switches any request with `Upgrade` (whatever
 * its method, key or version, as lenient servers do), then runs `session` on
 * the connection; other requests get `200 plain`.
 */
export function startRawWsUpstream(
  session: (conn: Deno.Conn, frames: FrameReader) => Promise<void> = () => Promise.resolve(),
): RawWsUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: string[] = [];
  const conns = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    const frames = new FrameReader(conn);
    try {
      const head = await frames.head();
      heads.push(head);
      if (!/\r\nupgrade:/i.test(head)) {
        await writeAllTo(conn, new TextEncoder().encode(PLAIN));
        return;
      }
      const key = /\r\nsec-websocket-key: *([^\r]*)/i.exec(head)?.[1] ?? "";
      await writeAllTo(
        conn,
        new TextEncoder().encode(
          "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n" +
            `sec-websocket-accept: ${await acceptFor(key)}\r\n\r\n`,
        ),
      );
      await session(conn, frames);
    } catch {
      // the gateway or the test closed the connection
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  let connections = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        conns.add(conn);
        sessions.push(serve(conn));
      }
    } catch {
      // closed
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    heads,
    connections: () => connections,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await accepting;
      await Promise.all(sessions);
    },
  };
}

const PLAIN = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain";

/** A WebSocket upstream answering each message with `echo:<message>`; `onSocket` sees each session. */
export function startEchoWsUpstream(onSocket: (socket: WebSocket) => void = () => {}): TestServer {
  return startUpstream((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    onSocket(socket);
    return response;
  });
}
