/**
 * Header fields of the response on its way back through the pipeline.
 *
 * An upstream's answer is a `ParsedResponse` (parsed_response.ts): its parsed
 * fields stay a plain list until something reads `headers`. The policies on
 * the way back (the request id, rate-limit fields, transforms) edit that list
 * through `responseFields`, and the listener writes it as is. Through the runtime's
 * Headers, every field added is validated again and every walk makes a
 * sorted copy. Any other Response is edited through its Headers, which
 * `responseFields` returns as they are: both answer the same calls alike.
 */
import { fieldIndex, fieldValue, TOKEN, trimEnds } from "./header_fields.ts";

/** The part of Headers the pipeline edits responses with; names are case-insensitive. */
export interface FieldEditor {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  delete(name: string): void;
}

/**
 * Each line of the field `name` (lower-case), for moving it elsewhere: a
 * repeated field joined into one value would fold Set-Cookie's cookies into
 * the first one's attributes. Headers keeps only Set-Cookie's lines apart.
 */
export function fieldLines(fields: FieldEditor, name: string): string[] {
  if (fields instanceof FieldListEditor) {
    return fields.list.filter((f) => f[0] === name).map((f) => f[1]);
  }
  if (name === "set-cookie" && fields instanceof Headers) return fields.getSetCookie();
  const value = fields.get(name);
  return value === null ? [] : [value];
}

// What Headers refuses in a value: NUL, CR, LF, and chars past latin1.
const REFUSED_VALUE = /[\0\r\n]|[^\0-\xff]/;

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
  const v = trimEnds(value, isEdgeWhitespace);
  if (REFUSED_VALUE.test(v)) throw new TypeError(`Invalid header value: "${v}"`);
  return v;
}
