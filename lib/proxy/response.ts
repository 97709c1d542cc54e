/**
 * An upstream's answer as the `Response` the pipeline passes on: the proxy's
 * and a declined protocol upgrade's alike.
 */
import type { UpstreamResponse } from "./http1/client.ts";
import { withBodySize } from "../observe/body_size.ts";

/** Status codes whose responses never carry a body (the Response constructor refuses one). */
const NULL_BODY = new Set([204, 205, 304]);

export function toResponse(res: UpstreamResponse): Response {
  let body = res.body;
  if (NULL_BODY.has(res.status)) {
    if (body instanceof ReadableStream) body.cancel().catch(() => {});
    body = null;
  }
  // Content-Length is framing, so it is not among the parsed headers: a byte body
  // is framed by the listener from its size, a streamed one by the upstream's length.
  const headers = res.headers;
  if (!(body instanceof Uint8Array)) {
    // A streamed body keeps its length (a download's progress; HEAD's answer),
    // which the listener then frames it by and checks it against.
    if (res.contentLength !== null) headers.push(["content-length", String(res.contentLength)]);
    return new Response(body, { status: res.status, statusText: res.statusText, headers });
  }
  // Headers added after construction: given to the constructor with a byte body,
  // the runtime builds a native copy of the response for Deno.serve (measured at
  // 4-10 us), which the first header edit (the request id) throws away.
  const out = new Response(body, { status: res.status, statusText: res.statusText });
  const h = out.headers;
  for (let i = 0; i < headers.length; i++) h.append(headers[i]![0], headers[i]![1]);
  return withBodySize(out, body.byteLength);
}
