/**
 * A socket with a read buffer, the common part of both ends of an HTTP/1.1
 * hop (the upstream connection, the client connection). At most one read is
 * pending at a time: a read started in the background (to notice the peer
 * closing) is picked up by the next `fill`, so no bytes are lost or reordered.
 */
import type { ReadBuffer } from "./bytes.ts";
import { closeQuietly, writeAllTo } from "./socket_io.ts";

export abstract class BufferedSocket implements ReadBuffer {
  buf: Uint8Array;
  /** Unconsumed bytes are buf[start, end). */
  start = 0;
  end = 0;
  closed = false;
  protected pending: Promise<number | null> | null = null;

  constructor(readonly socket: Deno.Conn, initialBuffer: number) {
    this.buf = new Uint8Array(initialBuffer);
  }

  /** Makes room after `end` for the next read (compacting or growing the buffer). */
  protected abstract makeRoom(): void;

  /** Reads more bytes into the buffer; returns how many, or 0 at end of stream. */
  async fill(): Promise<number> {
    let n: number | null;
    if (this.pending) {
      const p = this.pending;
      this.pending = null;
      n = await p;
    } else {
      this.makeRoom();
      n = await this.socket.read(this.buf.subarray(this.end));
    }
    if (n === null) return 0;
    this.end += n;
    return n;
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /** Moves up to `into.length` buffered bytes into `into`; returns how many. */
  take(into: Uint8Array): number {
    const n = Math.min(into.length, this.end - this.start);
    into.set(this.buf.subarray(this.start, this.start + n));
    this.start += n;
    return n;
  }

  /**
   * Reads up to `into.length` bytes into `into`: buffered ones first, then
   * straight from the socket (a body larger than the buffer is not copied).
   * Null at the end of the stream.
   */
  async readInto(into: Uint8Array): Promise<number | null> {
    if (this.buffered > 0) return this.take(into);
    if (this.pending) return await this.fill() === 0 ? null : this.take(into);
    return this.socket.read(into);
  }

  /** Writes every byte. */
  writeAll(data: Uint8Array): Promise<void> {
    return writeAllTo(this.socket, data);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.socket);
  }
}
