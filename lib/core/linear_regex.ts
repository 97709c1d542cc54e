/**
 * Regular expressions from the configuration run on RE2 (the `re2js` port):
 * an automaton, not a backtracking engine, so matching time is linear in the
 * input whatever the pattern. Constructs that need backtracking (backreferences,
 * lookaround) are syntax errors there, which is how a bad pattern fails at load.
 * Every pattern that request data is matched against runs here: the WAF's,
 * and the router's (`path_regex`, header and query `regex`, `rewrite.regex`).
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

/** A match as `RegExp.prototype.exec` gives one: groups by number (0 the whole), start, names. */
export interface LinearMatch {
  readonly [group: number]: string | undefined;
  readonly index: number;
  /** Named groups; a group that took no part is undefined. */
  readonly groups?: Record<string, string | undefined>;
}

/** A pattern with captures: what the router needs of `RegExp`, on the linear engine. */
export interface LinearPattern extends LinearRegex {
  /** As `RegExp.prototype.exec` without flags: the first match (`index`, `groups`), or null. */
  exec(input: string): LinearMatch | null;
  /** As `input.replace(pattern, replacement)`: the first match replaced, `$1`, `$<name>`, `$&`, `$$` expanded. */
  replaceFirst(input: string, replacement: string): string;
}

export function compileLinearPattern(source: string): LinearPattern {
  const re = re2().compile(source);
  return {
    test: (input) => re.test(input),
    exec: (input) => re.exec(input) as LinearMatch | null,
    replaceFirst: (input, replacement) => re.matcher(input).replaceFirst(replacement),
  };
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
