/**
 * Response bodies: a fully buffered body becomes bytes at once (the common small
 * response costs no stream); anything else streams with back-pressure, reading
 * from the socket only when the consumer pulls.
 */
import { type Bytes, concat, findLineEnd, type ReadBuffer } from "./bytes.ts";
import type { UpstreamConnection } from "./connection.ts";
import { ProtocolError, type ResponseHead } from "./response_head.ts";

const STREAM_CHUNK = 64 * 1024;

/** Called once when the body is done: `reusable` if the connection can serve another request. */
export type BodyDone = (reusable: boolean, error?: unknown) => void;

/**
 * A response's body by its framing: the bytes when all of it is buffered
 * already, a stream otherwise, null when the response has none. `done` runs
 * once the body has been read (at once when it was buffered or absent).
 */
export function responseBody(
  conn: UpstreamConnection,
  head: ResponseHead,
  method: string,
  done: BodyDone,
): Bytes | ReadableStream<Bytes> | null {
  const keep = !head.close;
  if (method === "HEAD" || head.status === 204 || head.status === 304) {
    done(keep, null);
    return null;
  }
  if (head.chunked) {
    const whole = takeBufferedChunked(conn);
    if (whole) {
      done(keep, null);
      return whole;
    }
    return chunkedStream(conn, done, keep);
  }
  if (head.contentLength !== null) {
    const whole = takeBufferedBody(conn, head.contentLength);
    if (whole) {
      done(keep, null);
      return whole;
    }
    return fixedLengthStream(conn, head.contentLength, done, keep);
  }
  return untilCloseStream(conn, (_r, e) => done(false, e));
}

/** The whole fixed-length body if it is already buffered, else null. */
export function takeBufferedBody(conn: UpstreamConnection, length: number): Bytes | null {
  if (conn.end - conn.start < length) return null;
  const body = conn.buf.slice(conn.start, conn.start + length);
  conn.start += length;
  return body;
}

function stream(
  pull: (c: ReadableStreamDefaultController<Bytes>) => Promise<boolean>,
  conn: UpstreamConnection,
  done: BodyDone,
  reusableAtEnd: () => boolean,
): ReadableStream<Bytes> {
  let finished = false;
  const finish = (reusable: boolean, error?: unknown) => {
    if (finished) return;
    finished = true;
    done(reusable, error);
  };
  return new ReadableStream<Bytes>({
    async pull(controller) {
      try {
        const more = await pull(controller);
        if (!more) {
          controller.close();
          finish(reusableAtEnd());
        }
      } catch (e) {
        conn.close();
        finish(false, e);
        controller.error(e);
      }
    },
    cancel(reason) {
      // The client went away: this connection is mid-message and cannot be reused.
      conn.close();
      finish(false, reason ?? new Error("Response body cancelled"));
    },
  }, { highWaterMark: 0 });
}

/** Streams a body of known length. */
export function fixedLengthStream(
  conn: UpstreamConnection,
  length: number,
  done: BodyDone,
  reusable: boolean,
): ReadableStream<Bytes> {
  let remaining = length;
  return stream(
    async (c) => {
      if (remaining === 0) return false;
      const buffered = conn.end - conn.start;
      if (buffered > 0) {
        const take = Math.min(buffered, remaining);
        c.enqueue(conn.buf.slice(conn.start, conn.start + take));
        conn.start += take;
        remaining -= take;
        return true;
      }
      const chunk = new Uint8Array(Math.min(remaining, STREAM_CHUNK));
      const n = await conn.socket.read(chunk);
      if (n === null) throw new ProtocolError("Upstream closed the connection inside a body");
      remaining -= n;
      c.enqueue(chunk.subarray(0, n));
      return true;
    },
    conn,
    done,
    () => reusable && remaining === 0,
  );
}

/** Streams a body delimited by the connection closing (no framing). */
export function untilCloseStream(
  conn: UpstreamConnection,
  done: BodyDone,
): ReadableStream<Bytes> {
  return stream(
    async (c) => {
      const buffered = conn.end - conn.start;
      if (buffered > 0) {
        c.enqueue(conn.buf.slice(conn.start, conn.end));
        conn.start = conn.end;
        return true;
      }
      const chunk = new Uint8Array(STREAM_CHUNK);
      const n = await conn.socket.read(chunk);
      if (n === null) return false;
      c.enqueue(chunk.subarray(0, n));
      return true;
    },
    conn,
    done,
    () => false,
  );
}

const enum Chunked {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

const MAX_CHUNK_LINE = 4096;
/** What `advance` returns when it stops in front of data bytes. */
const DATA_NEXT = new Uint8Array(0);

/** Decodes `Transfer-Encoding: chunked` (RFC 9112 §7.1); trailers are read and dropped. */
export class ChunkedDecoder {
  private state = Chunked.Size;
  private remaining = 0;
  constructor(private readonly conn: ReadBuffer) {}

  get done(): boolean {
    return this.state === Chunked.Done;
  }

  /** Data bytes of the current chunk not yet taken (0 between chunks). */
  get dataLeft(): number {
    return this.state === Chunked.Data ? this.remaining : 0;
  }

  /** Records `n` data bytes taken by the caller straight from the connection. */
  took(n: number): void {
    this.remaining -= n;
    if (this.remaining === 0) this.state = Chunked.DataEnd;
  }

  /**
   * Moves over framing (size lines, CRLFs, trailers) in the buffer: true when
   * data bytes come next, false at the end of the body, null when more input
   * is needed.
   */
  framing(): boolean | null {
    const r = this.advance(true);
    if (r === null) return null;
    return r === DATA_NEXT;
  }

  /**
   * Advances over buffered bytes; returns a data slice when one is available,
   * null when more input is needed, or an empty array at the end of the body.
   */
  step(): Bytes | null {
    return this.advance(false);
  }

  private advance(stopAtData: boolean): Bytes | null {
    const c = this.conn;
    while (true) {
      switch (this.state) {
        case Chunked.Size: {
          const eol = findLineEnd(c.buf, c.start, c.end);
          if (eol < 0) {
            if (c.end - c.start > MAX_CHUNK_LINE) {
              throw new ProtocolError("Chunk size line too long");
            }
            return null;
          }
          let line = "";
          for (let i = c.start; i < eol; i++) line += String.fromCharCode(c.buf[i]!);
          const semi = line.indexOf(";");
          const hex = (semi >= 0 ? line.slice(0, semi) : line).trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ProtocolError("Invalid chunk size");
          this.remaining = parseInt(hex, 16);
          c.start = eol + 2;
          this.state = this.remaining === 0 ? Chunked.Trailer : Chunked.Data;
          break;
        }
        case Chunked.Data: {
          if (stopAtData) return DATA_NEXT;
          const buffered = c.end - c.start;
          if (buffered === 0) return null;
          const take = Math.min(buffered, this.remaining);
          const out = c.buf.slice(c.start, c.start + take);
          c.start += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = Chunked.DataEnd;
          return out;
        }
        case Chunked.DataEnd: {
          if (c.end - c.start < 2) return null;
          if (c.buf[c.start] !== 13 || c.buf[c.start + 1] !== 10) {
            throw new ProtocolError("Missing CRLF after chunk data");
          }
          c.start += 2;
          this.state = Chunked.Size;
          break;
        }
        case Chunked.Trailer: {
          const eol = findLineEnd(c.buf, c.start, c.end);
          if (eol < 0) {
            if (c.end - c.start > MAX_CHUNK_LINE) throw new ProtocolError("Trailer line too long");
            return null;
          }
          const empty = eol === c.start;
          c.start = eol + 2;
          if (empty) {
            this.state = Chunked.Done;
            return new Uint8Array(0);
          }
          break;
        }
        case Chunked.Done:
          return new Uint8Array(0);
      }
    }
  }
}

/** The whole chunked body if it is already buffered (decoded into one array), else null. */
export function takeBufferedChunked(conn: ReadBuffer): Bytes | null {
  const savedStart = conn.start;
  const decoder = new ChunkedDecoder(conn);
  const parts: Bytes[] = [];
  let total = 0;
  while (true) {
    const part = decoder.step();
    if (part === null) {
      conn.start = savedStart;
      return null;
    }
    if (decoder.done) break;
    parts.push(part);
    total += part.length;
  }
  return concat(parts, total);
}

export function chunkedStream(
  conn: UpstreamConnection,
  done: BodyDone,
  reusable: boolean,
): ReadableStream<Bytes> {
  const decoder = new ChunkedDecoder(conn);
  return stream(
    async (c) => {
      while (true) {
        const part = decoder.step();
        if (part !== null) {
          if (decoder.done) return false;
          if (part.length > 0) {
            c.enqueue(part);
            return true;
          }
          continue;
        }
        const n = await conn.fill();
        if (n === 0) {
          throw new ProtocolError("Upstream closed the connection inside a chunked body");
        }
      }
    },
    conn,
    done,
    () => reusable && decoder.done,
  );
}
