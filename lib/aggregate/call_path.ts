/**
 * The path of an aggregated call. Substituted values are URL-encoded, but
 * encodeURIComponent leaves `.` alone: a value `..` would make `/users/${query.user}`
 * `/users/..`, which the upstream resolves to another resource (`/users/../admin`).
 */
import { compileTemplate, type Template } from "../transform/template.ts";

/**
 * A path template whose values are URL-encoded: text as UTF-8 (lone surrogates
 * as U+FFFD, never a throw), header values as the bytes they arrived as.
 */
export function compileCallPath(text: string): Template {
  return compileTemplate(text, encodeText, encodeBytes);
}

const encodeText = (v: string): string => encodeURIComponent(v.toWellFormed());

// deno-lint-ignore no-control-regex
const ASCII = /^[\x00-\x7f]*$/;
// deno-lint-ignore no-control-regex
const BYTES = /^[\x00-\xff]*$/;

/**
 * A value of one char per byte, each byte encoded as it is: encodeURIComponent
 * would take the bytes of a UTF-8 `é` (c3 a9) for two chars and encode their UTF-8.
 */
function encodeBytes(v: string): string {
  if (ASCII.test(v)) return encodeURIComponent(v);
  if (!BYTES.test(v)) return encodeText(v);
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    out += c < 0x80 ? encodeURIComponent(v[i]!) : `%${c.toString(16).toUpperCase()}`;
  }
  return out;
}

// `%2e` too: many servers decode it before resolving dot segments.
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?=\/|$)/i;

/** Whether the path part of `pathAndQuery` has a `.` or `..` segment. */
export function hasDotSegment(pathAndQuery: string): boolean {
  const q = pathAndQuery.indexOf("?");
  return DOT_SEGMENT.test(q < 0 ? pathAndQuery : pathAndQuery.slice(0, q));
}
