/**
 * Reads a request body for sending upstream. Byte streams (what Deno.serve
 * hands over) are read BYOB into one reused buffer, so a large upload makes no
 * garbage per chunk and the process's memory stays flat; other streams (a
 * body a policy rewrote) are read chunk by chunk.
 */
import { type Bytes, chunkHeader } from "./bytes.ts";

const HEADROOM = 16; // room for a chunk-size line in front of the data
const CAPACITY = 64 * 1024;

export interface BodyChunks {
  /** The next chunk, or null at the end. Valid until the next call. */
  next(): Promise<Bytes | null>;
  /** The chunk framed for `Transfer-Encoding: chunked` (in place when possible). */
  framed(chunk: Bytes): Bytes;
  cancel(reason: unknown): void;
}

export function bodyChunks(body: ReadableStream<Bytes>): BodyChunks {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream.
  }
  return byob ? byobChunks(byob) : defaultChunks(body.getReader());
}

function byobChunks(reader: ReadableStreamBYOBReader): BodyChunks {
  let buffer = new ArrayBuffer(HEADROOM + CAPACITY + 2);
  return {
    async next() {
      const { done, value } = await reader.read(new Uint8Array(buffer, HEADROOM, CAPACITY));
      if (value) buffer = value.buffer as ArrayBuffer;
      return done ? null : value as Bytes;
    },
    framed(chunk) {
      const size = chunkHeader(chunk.length);
      if (chunk.buffer !== buffer || chunk.byteOffset !== HEADROOM) return frameCopy(size, chunk);
      const start = HEADROOM - size.length;
      const out = new Uint8Array(buffer, start, size.length + chunk.length + 2);
      out.set(size, 0);
      out[out.length - 2] = 13;
      out[out.length - 1] = 10;
      return out;
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
    },
  };
}

/**
 * A body held in memory, in pieces of CAPACITY (views, not copies): each
 * piece's wait for the upstream to take it is watched, as a stream's is.
 */
export function heldChunks(body: Bytes): BodyChunks {
  let offset = 0;
  return {
    next() {
      if (offset >= body.length) return Promise.resolve(null);
      const piece = body.subarray(offset, offset + CAPACITY);
      offset += piece.length;
      return Promise.resolve(piece);
    },
    framed: (chunk) => frameCopy(chunkHeader(chunk.length), chunk),
    cancel() {},
  };
}

function defaultChunks(reader: ReadableStreamDefaultReader<Bytes>): BodyChunks {
  return {
    async next() {
      const { done, value } = await reader.read();
      return done ? null : value;
    },
    framed: (chunk) => frameCopy(chunkHeader(chunk.length), chunk),
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
    },
  };
}

function frameCopy(size: Uint8Array, chunk: Bytes): Bytes {
  const out = new Uint8Array(size.length + chunk.length + 2);
  out.set(size);
  out.set(chunk, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}
