/**
 * Counting the bytes of a streamed body, for bodies whose length is not known
 * up front. Used only when needed: a body with a known length is counted from
 * its Content-Length, without touching the stream. The count rides a byte
 * relay, so a streamed download stays BYOB-readable end to end.
 */
import type { Bytes } from "../proxy/http1/bytes.ts";

import { relayBytes, type StreamEnd } from "../core/byte_relay.ts";

export type { StreamEnd };

/**
 * Passes `body` through, counting bytes; `onEnd` runs once, when the stream
 * ends, fails or is cancelled (a client that went away).
 */
export function meterStream(
  body: ReadableStream<Bytes>,
  onEnd: (bytes: number, end: StreamEnd) => void,
): ReadableStream<Bytes> {
  let bytes = 0;
  return relayBytes(body, {
    chunk: (n) => (bytes += n),
    end: (how) => onEnd(bytes, how),
  });
}
