/**
 * Slow clients: once the request head has arrived, each piece of the body must
 * follow within `body_timeout_ms` of the previous one, or reading it fails with
 * 408 `request_timeout` (the upstream connection carrying the partial body is
 * closed, so no upstream sees a complete request). An idle limit, as nginx's
 * `client_body_timeout`: a large upload on a slow but steady link is fine.
 * Only waits for the client count: while the consumer does not read (an
 * upstream slow to take an upload), the clock stands, as in nginx.
 *
 * The body stays a byte stream, read BYOB straight into the consumer's buffer,
 * so the proxy's zero-copy upload path is kept. The deadline ends with the
 * response: an upstream that answers early is not held to it.
 */
import { GatewayError } from "../core/errors.ts";
import type { Handler, NamedPolicy } from "../core/pipeline.ts";
import type { RequestContext } from "../core/context.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";

interface Deadline {
  body: ReadableStream<Bytes>;
  clear(): void;
  /** Gives the source back (unlocked, unread) when nothing has taken the body. */
  releaseUnread(): void;
}

const CHUNK = 64 * 1024;

export function withDeadline(source: ReadableStream<Bytes>, ms: number): Deadline {
  let reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Bytes>;
  try {
    reader = source.getReader({ mode: "byob" });
  } catch {
    reader = source.getReader(); // not a byte stream (a policy replaced the body)
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired = false;
  const clear = () => clearTimeout(timer);
  const arm = (controller: ReadableByteStreamController) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      expired = true;
      const e = new GatewayError("request_timeout", {
        message: `The request body stalled for more than ${ms} ms`,
        headers: { connection: "close" },
      });
      controller.error(e);
      reader.cancel(e).catch(() => {});
    }, ms);
  };
  const body = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      // Only a read the client keeps waiting is timed: while the consumer (an upstream slow to
      // take the body, a policy) does not pull, the client is not the one stalling.
      arm(controller);
      try {
        const { done, value } = reader instanceof ReadableStreamBYOBReader
          ? await reader.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength))
          : await reader.read();
        if (expired) return;
        clear();
        if (done) {
          controller.close();
          if (value) request.respondWithNewView(value);
          else request.respond(0);
          return;
        }
        if (reader instanceof ReadableStreamBYOBReader) request.respondWithNewView(value!);
        else controller.enqueue(value!);
      } catch (e) {
        clear();
        if (!expired) controller.error(e);
      }
    },
    cancel(reason) {
      clear();
      return reader.cancel(reason);
    },
  });
  return {
    body: body as ReadableStream<Bytes>,
    clear,
    releaseUnread() {
      if (body.locked) return;
      try {
        reader.releaseLock();
      } catch {
        // A read of the source still pending: the body is not unread.
      }
    },
  };
}

export function createBodyDeadlinePolicy(ms: number): NamedPolicy {
  return {
    name: "body_timeout",
    // Not async: a request without a streamed body costs one check, no extra promise.
    policy: (ctx, next) => {
      const source = ctx.body;
      return source instanceof ReadableStream ? nextWithDeadline(ctx, next, source, ms) : next(ctx);
    },
  };
}

async function nextWithDeadline(
  ctx: RequestContext,
  next: Handler,
  source: ReadableStream<Bytes>,
  ms: number,
): Promise<Response> {
  const d = withDeadline(source, ms);
  ctx.body = d.body;
  try {
    return await next(ctx);
  } finally {
    d.clear();
    // Answered without the body (a refusal): the listener may drop what the client still sends.
    d.releaseUnread();
  }
}
