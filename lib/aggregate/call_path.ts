/**
 * The path of an aggregated call. Substituted values are URL-encoded, but
 * encodeURIComponent leaves `.` alone: a value `..` would make `/users/${query.user}`
 * `/users/..`, which the upstream resolves to another resource (`/users/../admin`).
 */
import { compileTemplate, type Template } from "../transform/template.ts";

/** A path template whose values are URL-encoded (lone surrogates as U+FFFD, never a throw). */
export function compileCallPath(text: string): Template {
  return compileTemplate(text, (v) => encodeURIComponent(v.toWellFormed()));
}

// `%2e` too: many servers decode it before resolving dot segments.
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?=\/|$)/i;

/** Whether the path part of `pathAndQuery` has a `.` or `..` segment. */
export function hasDotSegment(pathAndQuery: string): boolean {
  const q = pathAndQuery.indexOf("?");
  return DOT_SEGMENT.test(q < 0 ? pathAndQuery : pathAndQuery.slice(0, q));
}
