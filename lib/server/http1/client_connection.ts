/**
 * One client connection with its read buffer. The buffer holds the head being
 * parsed and any bytes that followed it (the start of a body, or the next
 * pipelined request); body bytes past the buffer are read straight into the
 * consumer's memory.
 */
import { BufferedSocket } from "../../proxy/http1/buffered_socket.ts";
import { MAX_HEAD_BYTES } from "./request_head.ts";

/**
 * The read buffer a connection starts with and goes back to when idle. A head
 * with a bearer token and cookies fits (nginx starts at 1 KiB); a larger one
 * grows it. Each idle keep-alive connection holds one: at 16 KiB, 5,000 of
 * them took 24.0 KB each of RSS, at 4 KiB 12.5 KB (bench/NOTES.md).
 */
const INITIAL_BUFFER = 4 * 1024;

export class ClientConnection extends BufferedSocket {
  /** Taken over by a protocol upgrade: the HTTP server no longer reads, writes or closes it. */
  hijacked = false;

  constructor(socket: Deno.Conn) {
    super(socket, INITIAL_BUFFER);
  }

  /**
   * Starts a read whose only purpose is to learn that the client closed the
   * connection (`onEnd`); bytes it gets (a pipelined request) stay buffered.
   */
  watchForEnd(onEnd: () => void): void {
    if (this.pending || this.closed) return;
    this.makeRoom();
    const p = this.io.read(this.buf.subarray(this.end)).catch(() => 0);
    this.pending = p;
    p.then((n) => {
      if (n === 0) onEnd();
    });
  }

  /** Before the wait for the next request: a buffer a large head grew goes back to its first size. */
  idle(): void {
    // Not under a read in flight (a watch for the client leaving): its bytes land in this buffer.
    if (this.buf.length > INITIAL_BUFFER && this.start === this.end && this.pending === null) {
      this.start = this.end = 0;
      this.buf = new Uint8Array(INITIAL_BUFFER);
    }
  }

  protected makeRoom(): void {
    if (this.start === this.end) {
      this.start = this.end = 0;
      return;
    }
    if (this.end < this.buf.length) return;
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      return;
    }
    // Only a head grows the buffer, and only up to the head ceiling (checked by the caller).
    const bigger = new Uint8Array(Math.min(this.buf.length * 2, MAX_HEAD_BYTES + 1024));
    bigger.set(this.buf.subarray(0, this.end));
    this.buf = bigger;
  }

  /** Hands the socket over; returns the bytes already read past the request head. */
  hijack(): Uint8Array {
    this.hijacked = true;
    return this.buf.slice(this.start, this.end);
  }

  override close(): void {
    if (!this.hijacked) super.close();
  }
}
