/**
 * A request body passed through a policy that only watches it (counting,
 * limiting) stays a byte stream: a BYOB read of the result reads straight
 * into the reader's buffer, so an upload through any number of watchers
 * allocates nothing per chunk. (A default-reader wrapper would make the
 * runtime allocate a fresh buffer for every piece, and a 200 MB upload would
 * leave the process that much garbage to collect.)
 */
import type { Bytes } from "../proxy/http1/bytes.ts";

export type StreamEnd = "done" | "error" | "cancelled";

export interface RelayHooks {
  /** Sees each piece's size; throwing fails the stream with what was thrown. */
  chunk?(bytes: number): void;
  /** Runs once, when the stream ends, fails or is cancelled. */
  end?(how: StreamEnd): void;
}

const CHUNK = 64 * 1024;

export function relayBytes(
  source: ReadableStream<Bytes>,
  hooks: RelayHooks,
): ReadableStream<Bytes> {
  let byob: ReadableStreamBYOBReader | null = null;
  let plain: ReadableStreamDefaultReader<Bytes> | null = null;
  // The source is locked at the first read, not before: a body no one reads stays the
  // listener's to drain (lingering.ts `dropUnreadBody`).
  const lock = () => {
    try {
      byob = source.getReader({ mode: "byob" });
    } catch {
      plain = source.getReader();
    }
  };
  let ended = false;
  const end = (how: StreamEnd) => {
    if (ended) return;
    ended = true;
    hooks.end?.(how);
  };
  return new ReadableStream({
    type: "bytes",
    async pull(c) {
      try {
        if (byob === null && plain === null) lock();
        const request = c.byobRequest;
        if (byob !== null) {
          const view = request?.view;
          const into = view
            ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
            : new Uint8Array(CHUNK);
          const { done, value } = await byob.read(into);
          if (done) {
            end("done");
            c.close();
            // The view's buffer went to the source: answer with the empty view it gave back.
            if (view) {
              request!.respondWithNewView(value ?? new Uint8Array(view.buffer, view.byteOffset, 0));
            }
            return;
          }
          hooks.chunk?.(value.length);
          if (view) request!.respondWithNewView(value);
          else c.enqueue(value);
          return;
        }
        const { done, value } = await plain!.read();
        if (done) {
          end("done");
          c.close();
          request?.respond(0);
          return;
        }
        hooks.chunk?.(value.length);
        c.enqueue(value);
      } catch (e) {
        end("error");
        ((byob ?? plain) as ReadableStreamGenericReader | null)?.cancel(e).catch(() => {});
        c.error(e);
      }
    },
    cancel(reason) {
      end("cancelled");
      const reader = (byob ?? plain) as ReadableStreamGenericReader | null;
      return reader !== null ? reader.cancel(reason) : source.cancel(reason);
    },
  }) as ReadableStream<Bytes>;
}
