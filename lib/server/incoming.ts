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
  /** The URL's authority (`host[:port]`), and its path and query (`/p?q`): the parts the pipeline reads. */
  readonly authority: string;
  readonly target: string;
  readonly headers: HeaderFields;
  readonly body: ReadableStream<Uint8Array<ArrayBuffer>> | null;
  /** The listener's own parser held `authority` and the Host field to `validAuthority`. */
  readonly authorityChecked: boolean;
  /**
   * The client named `authority` (a Host field, or HTTP/2's `:authority`, for
   * which the runtime lists no Host) rather than the listener making it up:
   * only such an authority is passed upstream (X-Forwarded-Host, preserve_host).
   */
  readonly authorityNamed: boolean;
  /** It came as HTTP/1.0 (false where the runtime parsed it: it does not tell). */
  readonly http10: boolean;
  /**
   * A WebSocket upgrade of it is the runtime's to accept (`Deno.upgradeWebSocket`,
   * on `Deno.serve` listeners); elsewhere the listener hands over its socket.
   */
  readonly runtimeWebSocket: boolean;
  /** The web Request, built on the first call. */
  request(): Request;
  /**
   * Body bytes that have arrived, where the listener's own parser counts them
   * (a Content-Length body); null where it does not, and the body is counted
   * as it is read (observer.ts). Not the declared length: a client can declare
   * any length and send none of it.
   */
  bodyReceived(): number | null;
}

/** A Request the runtime parsed, as an IncomingRequest. */
export function incomingOf(
  req: Request,
  runtimeWebSocket = false,
  http10 = false,
  authorityNamed = req.headers.has("host"),
): IncomingRequest {
  const { authority, target } = splitAbsolute(req.url);
  return {
    method: req.method,
    url: req.url,
    authority,
    target,
    headers: HeaderFields.of(req.headers),
    body: req.body,
    authorityChecked: false,
    authorityNamed,
    http10,
    runtimeWebSocket,
    request: () => req,
    bodyReceived: uncounted,
  };
}

const uncounted = (): null => null;

const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_~]+)(?::\d{1,5})?$/;

/**
 * Whether `authority` is `host[:port]` as RFC 9110 §7.2 allows it in Host and
 * in an absolute-form target, and no more: no userinfo, and none of `\`, `#`,
 * `%`, which a URL parser reads as another host than the router would.
 */
export function validAuthority(authority: string): boolean {
  return AUTHORITY.test(authority);
}

/**
 * The authority and the origin-form target of an absolute URL, as written:
 * `http://a:1/p?q` is `a:1` and `/p?q`; an empty path is `/` (RFC 9110 §4.2.3).
 */
export function splitAbsolute(url: string): { authority: string; target: string } {
  const authorityStart = url.indexOf("//") + 2;
  let end = authorityStart;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 || c === 63) break; // "/" or "?"
    end++;
  }
  const rest = url.slice(end);
  return {
    authority: url.slice(authorityStart, end),
    target: rest.charCodeAt(0) === 47 ? rest : `/${rest}`,
  };
}
