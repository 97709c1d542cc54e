/**
 * Changes to the request headers sent upstream, recorded by policies (identity
 * headers, transforms, credential stripping) and applied once when the request
 * head is written, instead of copying the incoming Headers.
 */

import type { HeaderFields } from "../core/header_fields.ts";

// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** Makes a value safe for a header line: no CR, LF or NUL; non-latin1 text as UTF-8 bytes. */
export function safeHeaderValue(value: string): string {
  let v = value.replace(UNSAFE, "").trim();
  // deno-lint-ignore no-control-regex
  if (!/^[\x00-\xff]*$/.test(v)) {
    v = String.fromCharCode(...new TextEncoder().encode(v));
  }
  return v;
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
    const n = name.toLowerCase();
    const v = safeHeaderValue(value);
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
