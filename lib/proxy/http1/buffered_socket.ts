/**
 * A socket with a read buffer, the common part of both ends of an HTTP/1.1
 * hop (the upstream connection, the client connection). At most one read is
 * pending at a time: a read started in the background (to notice the peer
 * closing) is picked up by the next `fill`, so no bytes are lost or reordered.
 */
import { type Bytes, fillHead, findHeadEnd, hasBareLf, type ReadBuffer } from "./bytes.ts";
import { closeQuietly } from "./socket_io.ts";
import { type SocketOps, socketOps } from "./socket_ops.ts";
import { deadlines } from "./deadlines.ts";

/** Heads (with a small body) up to this size are written from a buffer the connection keeps. */
const HEAD_BUFFER_BYTES = 4096;

export abstract class BufferedSocket implements ReadBuffer {
  buf: Uint8Array;
  /** Unconsumed bytes are buf[start, end). */
  start = 0;
  end = 0;
  closed = false;
  /** A read in flight (0 at the end of the stream), which the next `readMore` takes. */
  protected pending: Promise<number> | null = null;
  /** Bytes from `start` already searched for the end of a head. */
  protected headSearched = 0;
  /** Bytes from `start` already searched for a bare LF. */
  protected lfSearched = 0;
  private headBuffer: Bytes | null = null;
  /** The last view of `headBuffer` written from. */
  private headView: Bytes | null = null;
  /** A head is being written from `headBuffer` (a failed write leaves it set: the socket is done). */
  private writingHead = false;

  /** Reads and writes; `socket` serves for the rest (addresses, closing). */
  protected readonly io: SocketOps;

  /**
   * Coarse monotonic time the write in flight began; Infinity when none is. A
   * write settles once some bytes are taken, so one that waits long is a peer
   * that stopped reading (a send timeout's measure).
   */
  writeWaitingSince = Infinity;

  constructor(readonly socket: Deno.Conn, initialBuffer: number) {
    this.buf = new Uint8Array(initialBuffer);
    this.io = socketOps(socket);
  }

  /** Makes room after `end` for the next read (compacting or growing the buffer). */
  protected abstract makeRoom(): void;

  /** Reads more bytes into the buffer; returns how many, or 0 at end of stream. */
  async fill(): Promise<number> {
    return this.filled(await this.readMore());
  }

  /**
   * `fill` in two halves for the hot paths: `filled(await readMore())` is one
   * async layer fewer per read than `await fill()` (a promise and a resumption).
   * The read is the pending one if there is one, else a new one after `end`.
   */
  readMore(): Promise<number> {
    const p = this.pending;
    if (p !== null) {
      this.pending = null;
      return p;
    }
    this.makeRoom();
    // An emptied buffer (the common case) is read into whole: no view to allocate.
    return this.io.read(this.end === 0 ? this.buf : this.buf.subarray(this.end));
  }

  /** Accounts for what `readMore` read; returns how many bytes, 0 at end of stream. */
  filled(n: number): number {
    this.end += n;
    return n;
  }

  /**
   * Index of the CRLFCRLF ending the head that starts at `start`, or -1. The
   * search resumes where the last one gave up (fills may move the buffer, so
   * that is kept relative to `start`).
   */
  findHeadEnd(): number {
    const idx = findHeadEnd(this.buf, this.start + this.headSearched, this.end);
    this.headSearched = idx < 0 ? Math.max(0, this.end - this.start - 3) : 0;
    return idx;
  }

  /**
   * Whether the head that starts at `start` holds a LF that no CR precedes.
   * Resumes where the last search stopped, as `findHeadEnd` does: searched
   * from `start` on every read, a head trickled a byte per read cost n^2/2
   * (2.4 s for 64 KiB, minutes for an upstream's 1 MiB).
   */
  headHasBareLf(): boolean {
    const from = this.start + this.lfSearched;
    this.lfSearched = this.end - this.start;
    return hasBareLf(this.buf, this.start, from, this.end);
  }

  /** Consumes the buffer up to `offset` (a head just parsed). */
  consume(offset: number): void {
    this.start = offset;
    this.headSearched = 0;
    this.lfSearched = 0;
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
    // Nothing asked, nothing read: not the end of the stream, which a read of 0 bytes means below.
    if (into.length === 0) return 0;
    if (this.buffered > 0) return this.take(into);
    if (this.pending) return await this.fill() === 0 ? null : this.take(into);
    const n = await this.io.read(into);
    return n === 0 ? null : n;
  }

  /** Writes every byte. */
  async writeAll(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length;) {
      this.writeWaitingSince = deadlines.coarseNow();
      off += await this.io.write(off === 0 ? data : data.subarray(off));
    }
    this.writeWaitingSince = Infinity;
  }

  /**
   * Writes a head (a byte string) and the bytes after it in one write. Heads
   * up to HEAD_BUFFER_BYTES are encoded into a buffer the connection keeps:
   * a fresh array per message costs an off-heap backing store (a runtime
   * call, several mallocs, a finaliser for the GC; ~1.5 us in Deno). One
   * buffer per connection, not a shared pool: a write's promise settles only
   * after every handler the same tick woke has run (measured: with a pool of
   * eight, three writes in four still needed a new buffer).
   */
  writeHead(text: string, tail?: Uint8Array): Promise<void> {
    const size = text.length + (tail?.length ?? 0);
    if (size > HEAD_BUFFER_BYTES || this.writingHead) {
      return this.writeAll(fillHead(new Uint8Array(size), text, tail));
    }
    if (this.headBuffer === null || this.headBuffer.length < size) {
      this.headBuffer = new Uint8Array(Math.min(HEAD_BUFFER_BYTES, (size + 1023) & ~1023));
      this.headView = null;
    }
    // Messages on one connection tend to repeat their head's size: the view is kept for it.
    if (this.headView === null || this.headView.length !== size) {
      this.headView = this.headBuffer.subarray(0, size);
    }
    const out = fillHead(this.headView, text, tail);
    this.writingHead = true;
    this.headSize = size;
    this.writeWaitingSince = deadlines.coarseNow();
    // Not async: a head taken whole by one write (nearly all) settles with no async layer of its own.
    return this.io.write(out).then(this.headWritten);
  }

  /** Length of the head being written from `headBuffer`. */
  private headSize = 0;

  private readonly headWritten = (n: number): Promise<void> | undefined => {
    if (n < this.headSize) return this.writeRestOfHead(n);
    this.writingHead = false;
    this.writeWaitingSince = Infinity;
  };

  private async writeRestOfHead(off: number): Promise<void> {
    const out = this.headView!;
    while (off < out.length) {
      this.writeWaitingSince = deadlines.coarseNow();
      off += await this.io.write(out.subarray(off));
    }
    this.writingHead = false;
    this.writeWaitingSince = Infinity;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.socket);
  }
}
