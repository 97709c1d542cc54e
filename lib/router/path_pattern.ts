/**
 * Compiled path matchers. Plain paths match with string comparisons; a pattern
 * with `{name}` segments compiles to one anchored regular expression.
 */

export interface PathMatch {
  /** Length of the request path consumed by the match (what strip_prefix removes). */
  length: number;
  params: Record<string, string> | null;
}

export interface PathMatcher {
  kind: "prefix" | "exact" | "regex" | "any";
  /** Characters of literal text before the first variable part: the specificity measure. */
  literalLength: number;
  /** First path segment every match has, when it is fixed (for bucketing). */
  firstSegment: string | null;
  match(path: string): PathMatch | null;
}

const PARAM = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const NO_PARAMS: PathMatch = { length: 0, params: null };

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function firstSegmentOf(literal: string, complete: boolean): string | null {
  const slash = literal.indexOf("/", 1);
  if (slash > 0) return literal.slice(1, slash);
  return complete && literal.length > 1 ? literal.slice(1) : null;
}

export function compilePath(
  kind: "prefix" | "exact",
  pattern: string,
): PathMatcher {
  let p = pattern;
  if (kind === "prefix" && p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  const paramAt = p.indexOf("{");
  const literal = paramAt < 0 ? p : p.slice(0, paramAt);
  const firstSegment = firstSegmentOf(literal, paramAt < 0);
  if (paramAt < 0) {
    const len = p.length;
    if (kind === "exact") {
      return {
        kind,
        literalLength: len,
        firstSegment,
        match: (path) => (path === p ? { length: len, params: null } : null),
      };
    }
    if (p === "/") {
      return { kind, literalLength: 1, firstSegment: null, match: () => NO_PARAMS };
    }
    const hit: PathMatch = { length: len, params: null };
    return {
      kind,
      literalLength: len,
      firstSegment,
      match: (path) =>
        path.startsWith(p) && (path.length === len || path.charCodeAt(len) === 47) ? hit : null,
    };
  }
  const names: string[] = [];
  let source = "^";
  let last = 0;
  for (const m of p.matchAll(PARAM)) {
    source += escapeRegex(p.slice(last, m.index)) + "([^/]+)";
    names.push(m[1]!);
    last = m.index! + m[0].length;
  }
  source += escapeRegex(p.slice(last)) + (kind === "exact" ? "$" : "(?=/|$)");
  const re = new RegExp(source);
  return {
    kind,
    literalLength: literal.length,
    firstSegment,
    match(path) {
      const m = re.exec(path);
      if (!m) return null;
      const params: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) params[names[i]!] = decodeParam(m[i + 1]!);
      return { length: m[0].length, params };
    },
  };
}

export function compileRegexPath(source: string): PathMatcher {
  const re = new RegExp(source);
  const literal = /^\^((?:[^\\.*+?^${}()|[\]]|\\[./-])*)/.exec(source)?.[1]?.replace(/\\/g, "") ??
    "";
  const hasNames = /\(\?<[A-Za-z_]/.test(source);
  return {
    kind: "regex",
    literalLength: literal.length,
    firstSegment: literal.startsWith("/") ? firstSegmentOf(literal, false) : null,
    match(path) {
      const m = re.exec(path);
      if (!m) return null;
      return {
        length: m.index + m[0].length,
        params: hasNames && m.groups ? { ...m.groups } as Record<string, string> : null,
      };
    },
  };
}

export const ANY_PATH: PathMatcher = {
  kind: "any",
  literalLength: 0,
  firstSegment: null,
  match: () => NO_PARAMS,
};

function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
