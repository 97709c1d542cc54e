/**
 * What the HTTP/1.1 server hands the pipeline: the parsed parts of a request,
 * and a web Request built from them only when asked for (see incoming.ts).
 * That Request's Headers are filled from the parsed fields on first read too:
 * filling Headers checks every byte of every value again (a bearer token is
 * a kilobyte).
 *
 * The parser admits nothing Headers would refuse (token names; latin1 values
 * without CR, LF or NUL), and the server checks up front what the Request
 * constructor would refuse (`unservedMethod`, the URL), so a late build cannot throw.
 */
import { type FieldList, fillHeadersOnFirstRead, HeaderFields } from "../../core/header_fields.ts";
import { type IncomingRequest, splitAbsolute } from "../incoming.ts";

const requestHeaders = Object.getOwnPropertyDescriptor(Request.prototype, "headers")!.get!;

export class ParsedRequest extends Request {
  #fields: FieldList | null;

  constructor(url: string, init: RequestInit | undefined, fields: FieldList) {
    // A plain GET passes no init (undefined takes the constructor's default):
    // converting one costs 1 us (measured).
    super(url, init);
    this.#fields = fields;
  }

  static {
    fillHeadersOnFirstRead(this.prototype, requestHeaders, (r: ParsedRequest) => {
      const fields = r.#fields;
      r.#fields = null;
      return fields;
    });
  }
}

export class ParsedIncoming implements IncomingRequest {
  readonly headers: HeaderFields;
  readonly authorityChecked = true;
  readonly authority: string;
  readonly target: string;
  /** The absolute URL: the request target in absolute form, else made on first read. */
  #url: string | null;
  #request: Request | null = null;

  /**
   * `target` is the request target as sent; in origin form (`/p?q`) it is at
   * `authority` (the Host field, or the listener's address).
   */
  constructor(
    readonly method: string,
    authority: string,
    target: string,
    private readonly fields: FieldList,
    readonly body: ReadableStream<Uint8Array<ArrayBuffer>> | null,
    readonly http10: boolean,
    /** The body as the connection reads it, also when `body` is not handed on (a GET's). */
    private readonly bodyRead: { readonly received: number | null } | null = null,
    /** What an origin-form target's URL begins with: the listener's scheme. */
    private readonly origin: "http://" | "https://" = "http://",
  ) {
    this.headers = new HeaderFields(fields);
    if (target.charCodeAt(0) === 47) {
      this.authority = authority;
      this.target = target;
      this.#url = null;
    } else {
      ({ authority: this.authority, target: this.target } = splitAbsolute(target));
      this.#url = target;
    }
  }

  /** Without a Host field the authority is the listener's address (an HTTP/1.0 request). */
  get authorityNamed(): boolean {
    return this.headers.has("host");
  }

  /** This server hands an upgrade's socket over (on the prototype: no store per request). */
  get runtimeWebSocket(): boolean {
    return false;
  }

  bodyReceived(): number | null {
    return this.bodyRead === null ? 0 : this.bodyRead.received;
  }

  get url(): string {
    return this.#url ??= `${this.origin}${this.authority}${this.target}`;
  }

  request(): Request {
    if (this.#request !== null) return this.#request;
    const method = this.method;
    let init: RequestInit | undefined;
    if (this.body !== null) init = { method, body: this.body, duplex: "half" } as RequestInit;
    else if (method !== "GET") init = { method };
    return this.#request = new ParsedRequest(this.url, init, this.fields);
  }
}

// The Fetch standard upper-cases these six whatever case they came in, and refuses the other three.
const NORMALISED_METHOD = /^(?:delete|get|head|options|post|put)$/i;
const FORBIDDEN_METHOD = /^(?:connect|trace|track)$/i;

/** The method as a Request would carry it. */
export function fetchMethod(method: string): string {
  return method === "GET" || !NORMALISED_METHOD.test(method) ? method : method.toUpperCase();
}

/** Whether the gateway refuses to serve `method` (the Fetch standard forbids it). */
export function unservedMethod(method: string): boolean {
  return FORBIDDEN_METHOD.test(method);
}
