/** A rule's test of one value, compiled once: literal comparisons or a linear-time regex. */
import type { ValueMatcherConfig } from "../schema.ts";
import { compileLinearRegex } from "../../core/linear_regex.ts";

/** Tests a value; null means the value is absent (a missing header, no body). */
export type ValueTest = (value: string | null) => boolean;

export function compileValueMatcher(m: ValueMatcherConfig): ValueTest {
  if (typeof m === "string") {
    const re = compileLinearRegex(m);
    return (v) => v !== null && re.test(v);
  }
  if ("present" in m) return m.present ? (v) => v !== null : (v) => v === null;
  if ("regex" in m) {
    const re = compileLinearRegex(m.regex, m.case_insensitive);
    return (v) => v !== null && re.test(v);
  }
  const fold = m.case_insensitive;
  const norm = (v: string) => (fold ? v.toLowerCase() : v);
  if ("equals" in m) {
    const want = norm(m.equals);
    return (v) => v !== null && norm(v) === want;
  }
  if ("prefix" in m) {
    const want = norm(m.prefix);
    return (v) => v !== null && norm(v).startsWith(want);
  }
  const want = norm(m.contains);
  return (v) => v !== null && norm(v).includes(want);
}
