/**
 * Limits on the request head the gateway enforces itself: request-target length
 * (414), total header bytes and header count (431). The HTTP server refuses
 * heads over 64 KiB or 128 fields with a bare 400 before any of this runs.
 *
 * Headers are measured as received: each field line counts, with its bytes.
 * On a TLS listener the runtime parses the request and joins a repeated
 * field (`a, b`), which then counts once.
 */
import type { NamedPolicy } from "../core/pipeline.ts";
import type { RequestContext } from "../core/context.ts";

export interface HeadLimits {
  maxUriBytes: number;
  maxHeaderBytes: number;
  maxHeaders: number;
}

/** The refusal a head over the limits gets, or null. */
export function checkHead(ctx: RequestContext, l: HeadLimits): Response | null {
  // The target (path and query) as the client sent it.
  if (ctx.incoming.target.length > l.maxUriBytes) return ctx.refuse("uri_too_long");
  const fields = ctx.headers.list;
  if (fields.length > l.maxHeaders) {
    return ctx.refuse("headers_too_large", {
      message: `The request has more than ${l.maxHeaders} header fields`,
    });
  }
  let bytes = 0;
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i]!;
    bytes += name.length + value.length + 4; // ": " and CRLF
  }
  if (bytes > l.maxHeaderBytes) {
    return ctx.refuse("headers_too_large", {
      message: `The request headers are larger than ${l.maxHeaderBytes} bytes`,
    });
  }
  return null;
}

export function createHeadLimitsPolicy(l: HeadLimits): NamedPolicy {
  return { name: "head_limits", policy: (ctx, next) => checkHead(ctx, l) ?? next(ctx) };
}
