/**
 * An upstream's answer as the `Response` the pipeline passes on: the proxy's
 * and a declined protocol upgrade's alike.
 */
import type { RequestContext } from "../core/context.ts";
import type { UpstreamResponse } from "./http1/client.ts";
import { withBodySize } from "../observe/body_size.ts";
import { ParsedResponse } from "../core/parsed_response.ts";

/** Status codes whose responses never carry a body (the Response constructor refuses one). */
const NULL_BODY = new Set([204, 205, 304]);

/**
 * `toResponse`, or 502 `upstream_error` when the runtime refuses to build the
 * Response (a status or reason phrase the parser let through): an upstream's
 * fault must not be the client's 500, and a streamed body nobody will read is
 * cancelled, which gives its connection back to the pool.
 */
export function respondWith(ctx: RequestContext, res: UpstreamResponse): Response {
  try {
    return toResponse(res);
  } catch {
    if (res.body instanceof ReadableStream) res.body.cancel().catch(() => {});
    return ctx.refuse("upstream_error");
  }
}

export function toResponse(res: UpstreamResponse): Response {
  let body = res.body;
  if (NULL_BODY.has(res.status)) {
    if (body instanceof ReadableStream) body.cancel().catch(() => {});
    body = null;
  }
  // Content-Length is framing, so it is not among the parsed headers: a byte body
  // is framed by the listener from its size, a streamed one by the upstream's length.
  const headers = res.headers;
  const init = { status: res.status, statusText: res.statusText };
  if (typeof body === "string") {
    return withBodySize(new ParsedResponse(body, init, headers), body.length);
  }
  if (!(body instanceof Uint8Array)) {
    // A streamed body keeps its length (a download's progress; HEAD's answer),
    // which the listener then frames it by and checks it against.
    if (res.contentLength !== null) headers.push(["content-length", String(res.contentLength)]);
    return new ParsedResponse(body, init, headers);
  }
  return withBodySize(new ParsedResponse(body, init, headers), body.byteLength);
}
