/**
 * A request body as a byte stream that reads the socket only when its
 * consumer pulls: a slow upstream slows the client down (TCP back-pressure)
 * instead of the gateway buffering the upload. BYOB reads land in the
 * consumer's buffer without a copy once the bytes buffered with the head are
 * used up.
 */
import { GatewayError } from "../../core/errors.ts";
import { ChunkedDecoder } from "../../proxy/http1/body.ts";
import { ProtocolError } from "../../proxy/http1/response_head.ts";
import type { ClientConnection } from "./client_connection.ts";

const CHUNK = 64 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

export interface RequestBody {
  stream: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** Whether every byte of the body has been read off the connection. */
  readonly complete: boolean;
  /**
   * Bytes of a Content-Length body that have arrived (read, or buffered behind
   * what was read), never more than it declared; null for a chunked body.
   */
  readonly received: number | null;
  /** Skips what is left of the body if it is already buffered; returns whether the body is done. */
  skipBuffered(): boolean;
}

export function requestBody(
  conn: ClientConnection,
  length: number,
  chunked: boolean,
  expectContinue: boolean,
  onComplete: () => void,
): RequestBody {
  let remaining = length;
  let complete = false;
  let askContinue = expectContinue;
  const decoder = chunked ? new ChunkedDecoder(conn) : null;
  const finish = (c: ReadableByteStreamController) => {
    complete = true;
    c.close();
    c.byobRequest?.respond(0);
    onComplete();
  };
  const truncated = () =>
    new GatewayError("bad_request", {
      message: "The client closed the connection inside the request body",
      headers: { connection: "close" },
    });

  const stream = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK,
    async pull(c) {
      try {
        await pullInto(c);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        throw new GatewayError("bad_request", {
          message: `Malformed chunked body: ${e.message}`,
          headers: { connection: "close" },
        });
      }
    },
  }, { highWaterMark: 0 });

  async function pullInto(c: ReadableByteStreamController): Promise<void> {
    if (askContinue) {
      askContinue = false;
      if (conn.buffered === 0) await conn.writeAll(CONTINUE);
    }
    const view = c.byobRequest!.view!;
    const into = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    if (decoder === null) {
      const want = into.subarray(0, Math.min(into.length, remaining));
      const n = await conn.readInto(want);
      if (n === null || n === 0) throw truncated();
      remaining -= n;
      c.byobRequest!.respond(n);
      if (remaining === 0) finish(c);
      return;
    }
    const n = await decoder.readInto(into);
    if (n === null) throw truncated();
    if (n === 0) return finish(c);
    c.byobRequest!.respond(n);
  }

  return {
    stream,
    get complete() {
      return complete;
    },
    get received() {
      return decoder !== null ? null : length - remaining + Math.min(conn.buffered, remaining);
    },
    skipBuffered() {
      if (complete) return true;
      if (decoder === null) {
        if (conn.buffered < remaining) return false;
        conn.start += remaining;
        remaining = 0;
      } else {
        const saved = conn.start;
        while (true) {
          let part;
          try {
            part = decoder.step();
          } catch {
            return false;
          }
          if (part === null) {
            conn.start = saved;
            return false;
          }
          if (decoder.done) break;
        }
      }
      complete = true;
      return true;
    },
  };
}
