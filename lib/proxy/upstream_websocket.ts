/**
 * The upstream's end of a WebSocket relayed message by message: RFC 6455's
 * client role, spoken on the gateway's own upstream connection once the
 * upstream has switched. No extension is negotiated (the handshake offers
 * none), so frames are read and written as they are. The runtime's WebSocket
 * client is not used: it sends its own Host and User-Agent, cannot send the
 * close codes 1001-1014, and reports a refused upgrade without its answer.
 */
import type { UpstreamConnection } from "./http1/connection.ts";
import { type Bytes, concat } from "./http1/bytes.ts";

export type UpstreamEvent =
  | { kind: "message"; data: string | Bytes }
  /** 1005: a close frame without a code; 1006: the connection ended without one. */
  | { kind: "close"; code: number; reason: string };

/** A frame the upstream got wrong: the connection fails with `code` (RFC 6455 §7.4.1). */
export class WebSocketProtocolError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "WebSocketProtocolError";
  }
}

/** A message larger than this (64 MiB, the runtime's own limit) ends the session with 1009. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/**
 * A message in more fragments than this ends the session with 1009 too: the
 * byte bound alone let an upstream send 32 million empty fragments (2 bytes
 * each) into one message, each parsed and awaited. 64 Ki fragments carry the
 * largest message in pieces of 1 KiB.
 */
const MAX_FRAGMENTS = 65_536;
const NO_BYTES = new Uint8Array(0);

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

export class UpstreamWebSocket {
  /** Bytes given to `send` (and control frames) not yet written to the socket. */
  backlog = 0;
  /** A close frame has been sent: nothing more is. */
  closeSent = false;
  /** Payload bytes of the messages sent and received. */
  bytesSent = 0;
  bytesReceived = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly conn: UpstreamConnection) {}

  /** The next message or close; pings are answered on the way. */
  async next(): Promise<UpstreamEvent> {
    let parts: Bytes[] | null = null;
    let fragments = 0;
    let size = 0;
    let text = false;
    while (true) {
      const head = await this.frameHead();
      if (head === null) return { kind: "close", code: 1006, reason: "" };
      const { fin, opcode, length } = head;
      if (opcode >= OP_CLOSE) {
        const payload = await this.payload(length);
        if (payload === null) return { kind: "close", code: 1006, reason: "" };
        if (opcode === OP_CLOSE) return closeOf(payload);
        if (opcode === OP_PING) this.write(OP_PONG, payload);
        continue;
      }
      if (opcode === OP_CONTINUATION ? parts === null : parts !== null) {
        throw new WebSocketProtocolError(1002, "Fragments out of order");
      }
      if (size + length > MAX_MESSAGE_BYTES) {
        throw new WebSocketProtocolError(1009, "Message too large");
      }
      if (++fragments > MAX_FRAGMENTS) {
        throw new WebSocketProtocolError(1009, `A message in more than ${MAX_FRAGMENTS} fragments`);
      }
      if (parts === null) {
        parts = [];
        text = opcode === OP_TEXT;
      }
      const payload = await this.payload(length);
      if (payload === null) return { kind: "close", code: 1006, reason: "" };
      if (length > 0) parts.push(payload);
      size += length;
      if (!fin) continue;
      // Its own array when empty: the runtime may take over what it is given to send.
      const whole = parts.length === 0
        ? new Uint8Array(0)
        : parts.length === 1
        ? parts[0]!
        : concat(parts, size);
      this.bytesReceived += size;
      if (!text) return { kind: "message", data: whole };
      try {
        return { kind: "message", data: utf8.decode(whole) };
      } catch {
        throw new WebSocketProtocolError(1007, "Text that is not UTF-8");
      }
    }
  }

  /** Queues a message (an ArrayBuffer is binary); nothing is sent once closing. */
  send(data: string | ArrayBuffer): void {
    if (this.closeSent) return;
    const payload = typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
    this.bytesSent += payload.length;
    this.write(typeof data === "string" ? OP_TEXT : OP_BINARY, payload);
  }

  /** Queues the close frame (1005: one without a code), once. */
  close(code: number, reason: string): void {
    if (this.closeSent) return;
    let payload = new Uint8Array(0);
    if (code !== 1005) {
      const text = encoder.encode(reason);
      payload = new Uint8Array(2 + Math.min(text.length, 123));
      payload[0] = code >> 8;
      payload[1] = code & 0xff;
      payload.set(text.subarray(0, payload.length - 2), 2);
    }
    this.write(OP_CLOSE, payload);
    this.closeSent = true;
  }

  /** Settles once what was queued is written, or the socket failed. */
  flushed(): Promise<void> {
    return this.writing;
  }

  private write(opcode: number, payload: Uint8Array): void {
    const frame = maskedFrame(opcode, payload);
    this.backlog += frame.length;
    this.writing = this.writing
      .then(() => this.conn.writeAll(frame))
      .catch(() => this.conn.close())
      .finally(() => {
        this.backlog -= frame.length;
      });
  }

  /** The next frame's head, checked; null when the connection ends first. */
  private async frameHead(): Promise<{ fin: boolean; opcode: number; length: number } | null> {
    if (!await this.buffer(2)) return null;
    const c = this.conn;
    const b0 = c.buf[c.start]!;
    const b1 = c.buf[c.start + 1]!;
    const opcode = b0 & 0x0f;
    let length = b1 & 0x7f;
    const lengthBytes = length === 126 ? 2 : length === 127 ? 8 : 0;
    if ((b0 & 0x70) !== 0) throw new WebSocketProtocolError(1002, "Reserved bits set");
    if ((b1 & 0x80) !== 0) throw new WebSocketProtocolError(1002, "A masked frame from a server");
    if (opcode > OP_BINARY && opcode < OP_CLOSE || opcode > OP_PONG) {
      throw new WebSocketProtocolError(1002, `Unknown opcode ${opcode}`);
    }
    if (opcode >= OP_CLOSE && (lengthBytes !== 0 || (b0 & 0x80) === 0)) {
      throw new WebSocketProtocolError(1002, "A fragmented or long control frame");
    }
    if (!await this.buffer(2 + lengthBytes)) return null;
    const view = new DataView(c.buf.buffer, c.buf.byteOffset + c.start + 2);
    if (lengthBytes === 2) length = view.getUint16(0);
    else if (lengthBytes === 8) {
      const high = view.getUint32(0);
      // Past 2^53 a Number loses the length; far past any message this relay takes anyway.
      if (high > 0x1fffff) throw new WebSocketProtocolError(1009, "Message too large");
      length = high * 2 ** 32 + view.getUint32(4);
    }
    c.start += 2 + lengthBytes;
    return { fin: (b0 & 0x80) !== 0, opcode, length };
  }

  /** Whether `n` bytes are buffered, reading until they are (false at the end of the stream). */
  private async buffer(n: number): Promise<boolean> {
    const c = this.conn;
    while (c.buffered < n) {
      if (c.filled(await c.readMore()) === 0) return false;
    }
    return true;
  }

  /** A frame's payload: buffered bytes first, then straight from the socket. */
  private async payload(length: number): Promise<Bytes | null> {
    if (length === 0) return NO_BYTES;
    const out = new Uint8Array(length);
    let at = this.conn.take(out);
    while (at < length) {
      const n = await this.conn.readInto(out.subarray(at));
      if (n === null) return null;
      at += n;
    }
    return out;
  }
}

/** A close frame's code and reason (RFC 6455 §5.5.1, §7.4). */
function closeOf(payload: Uint8Array): UpstreamEvent {
  if (payload.length === 0) return { kind: "close", code: 1005, reason: "" };
  if (payload.length === 1) throw new WebSocketProtocolError(1002, "A one-byte close frame");
  const code = (payload[0]! << 8) | payload[1]!;
  if (!sendableCode(code)) throw new WebSocketProtocolError(1002, `Close code ${code}`);
  try {
    return { kind: "close", code, reason: utf8.decode(payload.subarray(2)) };
  } catch {
    throw new WebSocketProtocolError(1007, "A close reason that is not UTF-8");
  }
}

/** Codes a close frame may carry (RFC 6455 §7.4.1, and the registry's 1012-1014). */
export function sendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** A client's frame: masked with a fresh key (RFC 6455 §5.3), one frame per message. */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const at = 2 + lengthBytes;
  const out = new Uint8Array(at + 4 + n);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (lengthBytes === 2) view.setUint16(2, n);
  else if (lengthBytes === 8) {
    view.setUint32(2, Math.floor(n / 2 ** 32));
    view.setUint32(6, n >>> 0);
  }
  const mask = out.subarray(at, at + 4);
  crypto.getRandomValues(mask);
  const body = at + 4;
  for (let i = 0; i < n; i++) out[body + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}
