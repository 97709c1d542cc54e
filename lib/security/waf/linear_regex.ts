/**
 * Regular expressions from the configuration run on RE2 (the `re2js` port):
 * an automaton, not a backtracking engine, so matching time is linear in the
 * input whatever the pattern. Constructs that need backtracking (backreferences,
 * lookaround) are syntax errors there, which is how a bad rule fails at load.
 *
 * The engine is loaded by the first config that has a pattern (validation or
 * request filtering), not at start: a gateway without one does not carry it.
 */
import type { RE2JS } from "re2js";

export interface LinearRegex {
  /** Whether the pattern occurs anywhere in the input. */
  test(input: string): boolean;
}

let engine: typeof RE2JS | null = null;

/** Loads the RE2 engine; `compileLinearRegex()` needs it loaded. */
export async function loadLinearRegex(): Promise<void> {
  engine ??= (await import("re2js")).RE2JS;
}

function re2(): typeof RE2JS {
  if (engine === null) throw new Error("loadLinearRegex() must complete before compiling");
  return engine;
}

export function compileLinearRegex(source: string, caseInsensitive = false): LinearRegex {
  const e = re2();
  return e.compile(source, caseInsensitive ? e.CASE_INSENSITIVE : 0);
}

/** Why a pattern cannot be compiled, or null when it can. */
export async function linearRegexError(source: string): Promise<string | null> {
  await loadLinearRegex();
  try {
    re2().compile(source);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
