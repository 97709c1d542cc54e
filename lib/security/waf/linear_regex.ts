/**
 * Regular expressions from the configuration run on RE2 (the `re2js` port):
 * an automaton, not a backtracking engine, so matching time is linear in the
 * input whatever the pattern. Constructs that need backtracking (backreferences,
 * lookaround) are syntax errors there, which is how a bad rule fails at load.
 */
import { RE2JS } from "re2js";

export interface LinearRegex {
  /** Whether the pattern occurs anywhere in the input. */
  test(input: string): boolean;
}

export function compileLinearRegex(source: string, caseInsensitive = false): LinearRegex {
  return RE2JS.compile(source, caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
}

/** Why a pattern cannot be compiled, or null when it can. */
export function linearRegexError(source: string): string | null {
  try {
    RE2JS.compile(source);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
