/**
 * An upstream's answer as the `Response` the pipeline passes on, holding back
 * what the runtime makes costly until something asks for it:
 *
 * - its fields stay the parsed list (response_fields.ts) until something
 *   reads `headers`;
 * - a small body read whole stays the byte string it was read as until
 *   something reads the body. Given to the runtime, a byte body is copied
 *   into a new ArrayBuffer, and every ArrayBuffer costs ~1.5 us in Deno
 *   (measured: a backing store, several mallocs, a finaliser for the GC).
 *
 * The listener writes both as they are. Whatever reads them through the
 * Response API gets what a plain Response would give.
 */
import { withBodySize } from "../observe/body_size.ts";
import { type Bytes, type ByteString, headWith } from "../proxy/http1/bytes.ts";
import { type FieldList, fillHeadersOnFirstRead } from "./header_fields.ts";
import { type FieldEditor, FieldListEditor } from "./response_fields.ts";

const runtime = Response.prototype;
const runtimeHeaders = Object.getOwnPropertyDescriptor(runtime, "headers")!.get!;
const runtimeBody = Object.getOwnPropertyDescriptor(runtime, "body")!.get!;
const runtimeBodyUsed = Object.getOwnPropertyDescriptor(runtime, "bodyUsed")!.get!;

/**
 * A Response built from parsed fields (lower-case names, values the parser
 * checked) and a body of bytes, a stream, or a byte string held back.
 */
export class ParsedResponse extends Response {
  #fields: FieldListEditor | null;
  /** A body read whole that the runtime has not been given, or null. */
  #held: ByteString | null = null;
  /** The runtime Response a held body moved into once something read the body. */
  #bodied: Response | null = null;

  // No string body other than a held one: the runtime would give it a Content-Type of its own.
  constructor(
    body: Bytes | ByteString | ReadableStream<Uint8Array> | null,
    init: ResponseInit,
    fields: [string, string][],
  ) {
    const held = typeof body === "string";
    super(held ? null : body, init);
    this.#fields = new FieldListEditor(fields);
    if (held) this.#held = body;
  }

  /** The editor of a ParsedResponse whose Headers nothing has read yet, else null. */
  static unread(res: Response): FieldListEditor | null {
    return #fields in res ? res.#fields : null;
  }

  /** The held body of a ParsedResponse whose body nothing has read yet, else null. */
  static held(res: Response): ByteString | null {
    return #held in res && res.#bodied === null ? res.#held : null;
  }

  /** See `forRuntime`. */
  static forRuntime(res: Response): Response {
    if (!(#held in res)) return res;
    // Reading the accessor fills them.
    const headers = res.headers;
    if (res.#held === null) return res;
    // The runtime sends an empty body with no Content-Length at all (HTTP/2 too), so it is said.
    if (res.#held.length === 0) headers.set("content-length", "0");
    const body = res.#bodied === null ? headWith(res.#held) : runtimeBody.call(res.#bodied);
    return new Response(body, { status: res.status, statusText: res.statusText, headers });
  }

  /** The Response that answers for the body: this one, or the one a held body moved into. */
  #body(): Response {
    if (this.#held === null) return this;
    if (this.#bodied === null) {
      const type = this.headers.get("content-type");
      this.#bodied = new Response(
        headWith(this.#held),
        type === null ? undefined : { headers: { "content-type": type } },
      );
    }
    return this.#bodied;
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return this.#held === null ? super.arrayBuffer() : this.#body().arrayBuffer();
  }

  override blob(): Promise<Blob> {
    return this.#held === null ? super.blob() : this.#body().blob();
  }

  override bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#held === null ? super.bytes() : this.#body().bytes();
  }

  override formData(): Promise<FormData> {
    return this.#held === null ? super.formData() : this.#body().formData();
  }

  override json(): Promise<unknown> {
    return this.#held === null ? super.json() : this.#body().json();
  }

  override text(): Promise<string> {
    return this.#held === null ? super.text() : this.#body().text();
  }

  override clone(): Response {
    // The runtime's clone copies its own field list: the parsed one goes in first.
    const headers = this.headers;
    if (this.#held === null) return super.clone();
    if (this.#bodied?.bodyUsed) throw new TypeError("Body is unusable");
    const init = { status: this.status, statusText: this.statusText };
    return withBodySize(new ParsedResponse(this.#held, init, [...headers]), this.#held.length);
  }

  static {
    const proto = this.prototype;
    fillHeadersOnFirstRead(proto, runtimeHeaders, (r: ParsedResponse) => {
      const fields = r.#fields;
      r.#fields = null;
      return fields?.list ?? null;
    });
    // Accessors, which a subclass cannot declare over the DOM typings' properties.
    Object.defineProperties(proto, {
      body: {
        get(this: ParsedResponse) {
          return runtimeBody.call(this.#body());
        },
      },
      bodyUsed: {
        get(this: ParsedResponse) {
          return this.#held !== null && this.#bodied === null
            ? false
            : runtimeBodyUsed.call(this.#body());
        },
      },
    });
  }
}

/** The response's fields to read and edit: the list while it is unread, else its Headers. */
export function responseFields(res: Response): FieldEditor {
  return ParsedResponse.unread(res) ?? res.headers;
}

/** The fields to write, when still a list (lower-case names, in order); null: walk `headers`. */
export function unreadFields(res: Response): FieldList | null {
  return ParsedResponse.unread(res)?.list ?? null;
}

/**
 * The body to read whole: a held body as bytes (a copy; the response's own
 * stays unread), with no stream made for it; any other as `res.body`.
 */
export function bodyOf(res: Response): Bytes | Response["body"] {
  const held = ParsedResponse.held(res);
  return held === null ? res.body : headWith(held);
}

/**
 * The response as the runtime's own server can send it (`Deno.serve` reads
 * fields and body from internal slots, past the accessors).
 */
export function forRuntime(res: Response): Response {
  return ParsedResponse.forRuntime(res);
}
