/**
 * Reading the start of a request body for inspection without taking it from
 * the upstream: the bytes read are put back in front of the rest of the stream
 * (or, when the whole body fits, the body becomes those bytes).
 */
import type { RequestContext } from "../../core/context.ts";
import type { Bytes } from "../../proxy/http1/bytes.ts";

/** Up to `max` bytes from the start of the body; `ctx.body` still yields the whole body after. */
export async function peekBody(ctx: RequestContext, max: number): Promise<Bytes | null> {
  const body = ctx.body;
  if (body === null) return null;
  if (body instanceof Uint8Array) return body.length > max ? body.subarray(0, max) : body;
  const reader = body.getReader();
  const chunks: Bytes[] = [];
  let size = 0;
  let ended = false;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      chunks.push(value);
      size += value.length;
    }
  } catch (e) {
    reader.releaseLock();
    throw e;
  }
  const head = concat(chunks, size);
  if (ended) {
    ctx.body = head;
    ctx.bodyLength = head.length;
  } else {
    ctx.body = replay(head, reader);
  }
  return head.length > max ? head.subarray(0, max) : head;
}

function replay(head: Bytes, rest: ReadableStreamDefaultReader<Bytes>): ReadableStream<Bytes> {
  let first = true;
  return new ReadableStream<Bytes>({
    async pull(controller) {
      if (first) {
        first = false;
        controller.enqueue(head);
        return;
      }
      const { done, value } = await rest.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return rest.cancel(reason);
    },
  });
}

function concat(chunks: Bytes[], size: number): Bytes {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
