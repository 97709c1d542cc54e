/** Helpers of the proxy's attempt loop: keeping a body for resending, waiting between attempts. */
import type { RequestContext } from "../core/context.ts";
import { GatewayError } from "../core/errors.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";
import type { RetryPolicy } from "./retry.ts";

/** Whether the request can be sent again as it is: no body, or a body held in memory. */
export function replayable(ctx: RequestContext): boolean {
  return ctx.body === null || ctx.body instanceof Uint8Array;
}

/**
 * Reads a small streamed body into memory before the first attempt, so that a
 * retry can resend it. Large or unsized bodies stay streamed: those requests are
 * retried only when the upstream never saw them.
 */
export async function keepBodyForRetry(ctx: RequestContext, policy: RetryPolicy): Promise<void> {
  const body = ctx.body;
  const length = ctx.bodyLength;
  if (
    !(body instanceof ReadableStream) || length === null || length > policy.bufferBodyBytes ||
    !policy.mayResend(ctx.method)
  ) return;
  const out = new Uint8Array(length);
  let off = 0;
  const reader = body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    if (off + value.length > length) {
      await reader.cancel().catch(() => {});
      throw new GatewayError("bad_request", {
        message: "The request body is longer than its Content-Length",
      });
    }
    out.set(value, off);
    off += value.length;
  }
  if (off !== length) {
    throw new GatewayError("bad_request", {
      message: "The request body is shorter than its Content-Length",
    });
  }
  ctx.body = out as Bytes;
}

/** Waits `ms`; resolves false at once if the client goes away meanwhile. */
export function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
