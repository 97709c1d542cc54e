/**
 * Changes to the request headers sent upstream, recorded by policies (identity
 * headers, transforms, credential stripping) and applied once when the request
 * head is written, instead of copying the incoming Headers.
 */

import { type HeaderFields, trimEnds } from "../core/header_fields.ts";

// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f]/g;

// deno-lint-ignore no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
// deno-lint-ignore no-control-regex
const BYTES = /^[\x00-\xff]*$/;
const encoder = new TextEncoder();

/** Text as the string of its UTF-8 bytes (one char per byte), as a header line carries it. */
export function utf8Bytes(text: string): string {
  if (ASCII.test(text)) return text;
  let out = "";
  for (const b of encoder.encode(text)) out += String.fromCharCode(b);
  return out;
}

/**
 * Makes a value that is already bytes (one char per byte, as header values
 * arrive) safe for a header line: no CR, LF or NUL, no edge whitespace. A char
 * past U+00FF cannot be a byte: such a value is taken as text, sent as UTF-8.
 */
export function safeHeaderValue(value: string): string {
  // Not trim(): it also takes U+00A0, which is the last byte of some UTF-8 sequences (à is c3 a0).
  const v = trimEnds(value.replace(UNSAFE, ""), isBlank);
  return BYTES.test(v) ? v : utf8Bytes(v);
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/** A text value (a claim, an id, config text) safe for a header line, always as UTF-8. */
export function textHeaderValue(text: string): string {
  return safeHeaderValue(utf8Bytes(text));
}

export class HeaderEdits {
  // Created by the first edit: most requests make none.
  /** Lower-case name -> replacement values (null: removed). */
  replaced: Map<string, string[] | null> | null = null;
  /** Lower-case name -> values added after the original ones. */
  appended: Map<string, string[]> | null = null;

  set(name: string, value: string): void {
    this.setPrepared(name.toLowerCase(), safeHeaderValue(value));
  }

  /**
   * `set` for a lower-case name and a value already passed through
   * `safeHeaderValue`: for values rendered once and sent with many requests.
   */
  setPrepared(lowerName: string, safeValue: string): void {
    (this.replaced ??= new Map()).set(lowerName, [safeValue]);
    this.appended?.delete(lowerName);
  }

  append(name: string, value: string): void {
    this.appendPrepared(name.toLowerCase(), safeHeaderValue(value));
  }

  /** `append` for a lower-case name and a value already passed through `safeHeaderValue`. */
  appendPrepared(n: string, v: string): void {
    const r = this.replaced?.get(n);
    if (r) r.push(v);
    else if (r === null) this.replaced!.set(n, [v]);
    else {
      const a = (this.appended ??= new Map()).get(n);
      if (a) a.push(v);
      else this.appended.set(n, [v]);
    }
  }

  remove(name: string): void {
    const n = name.toLowerCase();
    (this.replaced ??= new Map()).set(n, null);
    this.appended?.delete(n);
  }

  /** The value the upstream will see, given the original headers. */
  get(name: string, original: HeaderFields): string | null {
    const n = name.toLowerCase();
    const r = this.replaced?.get(n);
    if (r === null) return null;
    if (r) return r.join(", ");
    const o = original.get(n);
    const a = this.appended?.get(n);
    if (!a) return o;
    return o === null ? a.join(", ") : `${o}, ${a.join(", ")}`;
  }

  /** Renames a header, keeping its effective value. */
  rename(from: string, to: string, original: HeaderFields): void {
    const v = this.get(from, original);
    this.remove(from);
    if (v !== null) this.set(to, v);
  }
}
