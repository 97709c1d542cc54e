/**
 * Counting the bytes of a streamed body, for bodies whose length is not known
 * up front. Used only when needed: a body with a known length is counted from
 * its Content-Length, without touching the stream.
 */
import type { Bytes } from "../proxy/http1/bytes.ts";

import type { StreamEnd } from "../core/byte_relay.ts";

export type { StreamEnd };

/**
 * Passes `body` through, counting bytes; `onEnd` runs once, when the stream
 * ends, fails or is cancelled (a client that went away).
 */
export function meterStream(
  body: ReadableStream<Bytes>,
  onEnd: (bytes: number, end: StreamEnd) => void,
): ReadableStream<Bytes> {
  const reader = body.getReader();
  let bytes = 0;
  let ended = false;
  const end = (how: StreamEnd) => {
    if (ended) return;
    ended = true;
    onEnd(bytes, how);
  };
  return new ReadableStream<Bytes>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Bytes>;
      try {
        chunk = await reader.read();
      } catch (e) {
        end("error");
        controller.error(e);
        return;
      }
      if (chunk.done) {
        end("done");
        controller.close();
        return;
      }
      bytes += chunk.value.byteLength;
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      end("cancelled");
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
