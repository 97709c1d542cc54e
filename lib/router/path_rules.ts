/**
 * Load-time checks of the paths a config writes: a route path a normalised
 * request path can never equal, and rewrite text an upstream cannot receive raw.
 */
import { isPathChar } from "../security/path.ts";

const PARAM = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
/** What `$&`, `$1`, `$<name>` and the like insert: text of the already normalised path. */
const REPLACEMENT_PATTERN = /\$(?:[$&`']|\d{1,2}|<[^>]*>)/g;

/** Why `c` cannot stand raw in a path, or null when it can (`%` begins an escape). */
function rawCharProblem(c: string): string | null {
  if (c === "%" || (c.charCodeAt(0) < 0x80 && isPathChar(c.charCodeAt(0)))) return null;
  if (c === "?") return `"?" starts the query string, which is not part of the path`;
  if (c === "#") return `"#" starts a fragment, which is never part of the path`;
  const code = c.codePointAt(0)!;
  if (code < 0x20 || code === 0x7f) {
    return `a control character (U+${code.toString(16).padStart(4, "0").toUpperCase()})`;
  }
  const escaped = [...new TextEncoder().encode(c)]
    .map((b) => "%" + b.toString(16).padStart(2, "0").toUpperCase()).join("");
  return `"${c}" is not allowed raw in a path (write ${escaped})`;
}

function firstRawCharProblem(text: string): string | null {
  for (const c of text) {
    const why = rawCharProblem(c);
    if (why !== null) return why;
  }
  return null;
}

const ESCAPE = /%(?:[0-9A-Fa-f]{2})?/g;

/**
 * Why an escape in a route path can never be in a normalised request path, or
 * null: requests keep escapes upper-case, decode unreserved ones and refuse
 * malformed ones, encoded `/` and `\`, and encoded control characters.
 */
function escapeProblem(literal: string): string | null {
  for (const [escape] of literal.matchAll(ESCAPE)) {
    if (escape.length < 3) return `"%" must begin an escape of two hex digits (write %25)`;
    const byte = parseInt(escape.slice(1), 16);
    if (byte === 0x2f || byte === 0x5c || byte < 0x20 || byte === 0x7f) {
      return `${escape} is refused in request paths`;
    }
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c)) return `${escape} is matched decoded (write ${c})`;
    const upper = escape.toUpperCase();
    if (escape !== upper) return `${escape} is matched upper-case (write ${upper})`;
  }
  return null;
}

/** Why a `path` or `path_exact` pattern can never match a request, or null. */
export function routePathProblem(pattern: string): string | null {
  const names = [...pattern.matchAll(PARAM)].map((m) => m[1]!);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) return `expected distinct parameter names, {${repeated}} is twice`;
  const literal = pattern.replace(PARAM, "x");
  if (/[{}]/.test(literal)) {
    return "expected {name} parameters closed by } (a name is letters, digits and _)";
  }
  const why = firstRawCharProblem(literal) ?? escapeProblem(literal);
  if (why !== null) return `expected a path a request can have: ${why}`;
  if (literal.split("/").some((seg) => seg === "." || seg === "..")) {
    return "expected a path without . or .. segments (request paths are matched with them resolved)";
  }
  return null;
}

/** Why literal text a rewrite puts in the upstream path cannot stand there, or null. */
export function rewriteTextProblem(text: string): string | null {
  const raw = firstRawCharProblem(text);
  return raw === null ? null : `expected text that can stand in a path: ${raw}`;
}

/** The literal parts of a regex replacement (what `$` patterns leave). */
export function replacementLiteral(replacement: string): string {
  return replacement.replace(REPLACEMENT_PATTERN, "");
}
