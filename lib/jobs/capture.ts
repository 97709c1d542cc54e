/**
 * The request as a job carries it: the body read in full (bounded), and the
 * headers exactly as the proxy would send them upstream after the route's
 * policies (transforms, identity headers, credential stripping).
 */
import { Buffer } from "node:buffer";
import type { RequestContext } from "../core/context.ts";
import { GatewayError } from "../core/errors.ts";
import { buildHeaderBlock, type ForwardOptions } from "../proxy/forward.ts";

/**
 * Reads the whole request body; more than `max` bytes is a 413. A Buffer,
 * because that is what the Redis client sends as bytes.
 */
export async function readBody(ctx: RequestContext, max: number): Promise<Buffer> {
  const body = ctx.body;
  if (body === null) return Buffer.alloc(0);
  if (body instanceof Uint8Array) {
    if (body.byteLength > max) throw tooLarge(max);
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }
  if (ctx.bodyLength !== null && ctx.bodyLength > max) {
    body.cancel().catch(() => {});
    throw tooLarge(max);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        reader.cancel().catch(() => {});
        throw tooLarge(max);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(max: number): GatewayError {
  return new GatewayError("payload_too_large", {
    message: `The request body is larger than ${max} bytes, the most an async route queues`,
  });
}

/** What the captured headers add, as the proxy would: Via, the request id (and the trace context). */
export type CaptureOptions = Pick<ForwardOptions, "via" | "requestIdHeader">;

/**
 * Header fields of the job, as name/value pairs. `host` is left to the worker
 * (it knows its target) and `idempotency-key` is the gateway's own concern.
 */
export function capturedHeaders(ctx: RequestContext, o: CaptureOptions): [string, string][] {
  const block = buildHeaderBlock(ctx, {
    ...o,
    authority: "",
    preserveHost: false,
    trustedPeer: ctx.peerTrusted,
    extraBlock: "",
    extraNames: null,
  });
  const out: [string, string][] = [];
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    if (name === "host" || name === "idempotency-key") continue;
    out.push([name, line.slice(colon + 2)]);
  }
  return out;
}
