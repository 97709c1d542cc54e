/**
 * Header fields of the response on its way back through the pipeline.
 *
 * An upstream's answer is a `ParsedResponse`: its parsed fields stay a plain
 * list until something reads `headers`. The policies on the way back (the
 * request id, rate-limit fields, transforms) edit that list through
 * `responseFields`, and the listener writes it as is. Through the runtime's
 * Headers, every field added is validated again and every walk makes a
 * sorted copy. Any other Response is edited through its Headers, which
 * `responseFields` returns as they are: both answer the same calls alike.
 */
import {
  fieldIndex,
  type FieldList,
  fieldValue,
  fillHeadersOnFirstRead,
  TOKEN,
} from "./header_fields.ts";

/** The part of Headers the pipeline edits responses with; names are case-insensitive. */
export interface FieldEditor {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  delete(name: string): void;
}

// What Headers refuses in a value: NUL, CR, LF, and chars past latin1.
const REFUSED_VALUE = /[\0\r\n]|[^\0-\xff]/;
const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

function isEdgeWhitespace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/** A field list edited with the rules of Headers (same normalisation, same TypeErrors). */
export class FieldListEditor implements FieldEditor {
  constructor(readonly list: [string, string][]) {}

  get(name: string): string | null {
    return fieldValue(this.list, name.toLowerCase());
  }

  has(name: string): boolean {
    return fieldIndex(this.list, name.toLowerCase()) >= 0;
  }

  set(name: string, value: string): void {
    const n = checkedName(name);
    const v = checkedValue(value);
    const list = this.list;
    const at = fieldIndex(list, n);
    if (at < 0) {
      list.push([n, v]);
      return;
    }
    list[at] = [n, v];
    for (let i = list.length - 1; i > at; i--) if (list[i]![0] === n) list.splice(i, 1);
  }

  append(name: string, value: string): void {
    this.list.push([checkedName(name), checkedValue(value)]);
  }

  delete(name: string): void {
    const n = checkedName(name);
    const list = this.list;
    for (let i = list.length - 1; i >= 0; i--) if (list[i]![0] === n) list.splice(i, 1);
  }
}

function checkedName(name: string): string {
  if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: "${name}"`);
  return name.toLowerCase();
}

function checkedValue(value: string): string {
  let v = value;
  if (
    v.length > 0 &&
    (isEdgeWhitespace(v.charCodeAt(0)) || isEdgeWhitespace(v.charCodeAt(v.length - 1)))
  ) v = v.replace(EDGE_WHITESPACE, "");
  if (REFUSED_VALUE.test(v)) throw new TypeError(`Invalid header value: "${v}"`);
  return v;
}

const responseHeaders = Object.getOwnPropertyDescriptor(Response.prototype, "headers")!.get!;

/**
 * A Response built from parsed fields (lower-case names, values the parser
 * checked), which fill its Headers on first read only.
 */
export class ParsedResponse extends Response {
  #fields: FieldListEditor | null;

  // Bytes or a stream: a body the runtime would give a Content-Type of its own is not accepted.
  constructor(
    body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null,
    init: ResponseInit,
    fields: [string, string][],
  ) {
    super(body, init);
    this.#fields = new FieldListEditor(fields);
  }

  /** The editor of a ParsedResponse whose Headers nothing has read yet, else null. */
  static unread(res: Response): FieldListEditor | null {
    return #fields in res ? res.#fields : null;
  }

  static {
    fillHeadersOnFirstRead(this.prototype, responseHeaders, (r: ParsedResponse) => {
      const fields = r.#fields;
      r.#fields = null;
      return fields?.list ?? null;
    });
  }
}

/** The response's fields to read and edit: the list while it is unread, else its Headers. */
export function responseFields(res: Response): FieldEditor {
  return ParsedResponse.unread(res) ?? res.headers;
}

/**
 * The response with its Headers filled, for a server that reads them past the
 * accessor (`Deno.serve` takes them from the runtime's internal slots).
 */
export function withHeadersFilled(res: Response): Response {
  // Reading the accessor fills them.
  if (ParsedResponse.unread(res) !== null) void res.headers;
  return res;
}

/** The fields to write, when still a list (lower-case names, in order); null: walk `headers`. */
export function unreadFields(res: Response): FieldList | null {
  return ParsedResponse.unread(res)?.list ?? null;
}
