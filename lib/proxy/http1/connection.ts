/**
 * One upstream connection with its read buffer. While idle in the pool it keeps a
 * read pending, so that a connection the upstream closed is noticed at once and
 * the first bytes of the next response are read by that same pending read.
 */

import { BufferedSocket } from "./buffered_socket.ts";
import { ProtocolError } from "./response_head.ts";

export type Socket = Deno.TcpConn | Deno.TlsConn;

const INITIAL_BUFFER = 16 * 1024;
const MAX_HEAD_BUFFER = 1024 * 1024;

export class UpstreamConnection extends BufferedSocket {
  /** Requests served; the first one is on a fresh connection. */
  uses = 0;
  idleSince = 0;
  onClosedWhileIdle: (() => void) | null = null;

  constructor(override readonly socket: Socket, readonly key: string) {
    super(socket, INITIAL_BUFFER);
  }

  protected makeRoom(): void {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) this.grow();
  }

  private grow(): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      if (this.end < this.buf.length) return;
    }
    // The upstream did answer: a protocol error, not a dead connection to send the request again on.
    if (this.buf.length >= MAX_HEAD_BUFFER) {
      throw new ProtocolError("Upstream response head too large");
    }
    const bigger = new Uint8Array(this.buf.length * 2);
    bigger.set(this.buf.subarray(0, this.end));
    this.buf = bigger;
  }

  /** Parks the connection: starts the read that watches for the upstream closing it. */
  park(now: number): void {
    this.idleSince = now;
    this.start = this.end = 0;
    this.headSearched = this.lfSearched = 0;
    // One large head grows the buffer up to MAX_HEAD_BUFFER: an idle connection does not keep that.
    if (this.buf.length > INITIAL_BUFFER) this.buf = new Uint8Array(INITIAL_BUFFER);
    const p = this.io.read(this.buf);
    this.pending = this.parkedRead = p;
    p.then(this.parkedReadDone, this.parkedReadFailed);
  }

  /** The read a park started; `pending` no longer holds it once an exchange has taken it. */
  private parkedRead: Promise<number> | null = null;

  // Once per connection, not per park. They run before the reaction of whoever took the
  // read (registered first), so an idle connection is one whose read is still pending here.
  private readonly parkedReadDone = () => {
    // Any byte or EOF while idle means the connection can no longer be used.
    if (this.stillParked()) this.kill();
  };
  private readonly parkedReadFailed = () => {
    if (this.stillParked()) this.kill();
  };

  private stillParked(): boolean {
    const parked = this.pending !== null && this.pending === this.parkedRead;
    this.parkedRead = null;
    return parked;
  }

  private kill(): void {
    this.pending = null;
    this.close();
    this.onClosedWhileIdle?.();
  }
}
