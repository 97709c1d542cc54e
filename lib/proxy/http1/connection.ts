/**
 * One upstream connection with its read buffer. While idle in the pool it keeps a
 * read pending, so that a connection the upstream closed is noticed at once and
 * the first bytes of the next response are read by that same pending read.
 */

export type Socket = Deno.TcpConn | Deno.TlsConn;

const INITIAL_BUFFER = 16 * 1024;
const MAX_HEAD_BUFFER = 1024 * 1024;

export class UpstreamConnection {
  buf = new Uint8Array(INITIAL_BUFFER);
  /** Unconsumed bytes are buf[start, end). */
  start = 0;
  end = 0;
  closed = false;
  /** Requests served; the first one is on a fresh connection. */
  uses = 0;
  idleSince = 0;
  private pending: Promise<number | null> | null = null;
  onClosedWhileIdle: (() => void) | null = null;

  constructor(readonly socket: Socket, readonly key: string) {}

  /** Reads more bytes into the buffer; returns how many, or 0 at end of stream. */
  async fill(): Promise<number> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) this.grow();
    let n: number | null;
    if (this.pending) {
      const p = this.pending;
      this.pending = null;
      n = await p;
    } else {
      n = await this.socket.read(this.buf.subarray(this.end));
    }
    if (n === null) return 0;
    this.end += n;
    return n;
  }

  private grow(): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      if (this.end < this.buf.length) return;
    }
    if (this.buf.length >= MAX_HEAD_BUFFER) throw new Error("Upstream response head too large");
    const bigger = new Uint8Array(this.buf.length * 2);
    bigger.set(this.buf.subarray(0, this.end));
    this.buf = bigger;
  }

  /** Writes every byte. */
  async writeAll(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.socket.write(data.subarray(off));
  }

  /** Parks the connection: starts the read that watches for the upstream closing it. */
  park(now: number): void {
    this.idleSince = now;
    this.start = this.end = 0;
    const p = this.socket.read(this.buf);
    this.pending = p;
    p.then((n) => {
      // Any byte or EOF while idle means the connection can no longer be used.
      if (this.pending === p && (n === null || n > 0)) this.kill();
    }, () => {
      if (this.pending === p) this.kill();
    });
  }

  private kill(): void {
    this.pending = null;
    this.close();
    this.onClosedWhileIdle?.();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close();
    } catch {
      // Already closed by the peer.
    }
  }
}
