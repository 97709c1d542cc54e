/**
 * Slow clients: the request body must arrive within `body_timeout_ms` of the
 * request head, or reading it fails with 408 `request_timeout` (the upstream
 * connection carrying the partial body is closed, so no upstream sees a
 * complete request). The deadline ends with the response: an upstream that
 * answers early is not held to it.
 */
import { GatewayError } from "../core/errors.ts";
import type { NamedPolicy } from "../core/pipeline.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";

interface Deadline {
  body: ReadableStream<Bytes>;
  clear(): void;
}

export function withDeadline(source: ReadableStream<Bytes>, ms: number): Deadline {
  const reader = source.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired = false;
  const clear = () => clearTimeout(timer);
  const body = new ReadableStream<Bytes>({
    start(controller) {
      timer = setTimeout(() => {
        expired = true;
        const e = new GatewayError("request_timeout", {
          message: `The request body was not received within ${ms} ms`,
          headers: { connection: "close" },
        });
        controller.error(e);
        reader.cancel(e).catch(() => {});
      }, ms);
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          clear();
          controller.close();
        } else controller.enqueue(value);
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
  return { body, clear };
}

export function createBodyDeadlinePolicy(ms: number): NamedPolicy {
  return {
    name: "body_timeout",
    policy: async (ctx, next) => {
      const source = ctx.body;
      if (!(source instanceof ReadableStream)) return next(ctx);
      const d = withDeadline(source, ms);
      ctx.body = d.body;
      try {
        return await next(ctx);
      } finally {
        d.clear();
      }
    },
  };
}
