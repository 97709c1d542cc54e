/**
 * A request as a listener hands it to the gateway. The gateway's own HTTP/1.1
 * server passes what it parsed and builds the web `Request` only when
 * something asks for one (a WebSocket upgrade, a handler outside the
 * pipeline): building it for every request cost 1-2.5 us and 2 KB, and
 * Requests were the largest of the objects that outlived a young-generation
 * GC under load (measured). Listeners the runtime parses (TLS) pass theirs.
 */
import { HeaderFields } from "../core/header_fields.ts";

export interface IncomingRequest {
  /** As the Fetch standard normalises it (`get` is `GET`). */
  readonly method: string;
  /** The absolute URL as the client sent it: not yet through the URL parser, which resolves `..`. */
  readonly url: string;
  readonly headers: HeaderFields;
  readonly body: ReadableStream<Uint8Array<ArrayBuffer>> | null;
  /** The web Request, built on the first call. */
  request(): Request;
}

/** A Request the runtime parsed, as an IncomingRequest. */
export function incomingOf(req: Request): IncomingRequest {
  return {
    method: req.method,
    url: req.url,
    headers: HeaderFields.of(req.headers),
    body: req.body,
    request: () => req,
  };
}
