/**
 * The built-in filtering rules: common SQL injection, cross-site scripting and
 * path traversal shapes. They are deliberately narrow (attack syntax, not
 * single suspicious characters) so that ordinary text and JSON pass; the
 * README lists them. Patterns are RE2 syntax, matched case-insensitively
 * against the percent-decoded path and query, the body prefix, and the
 * Cookie, Referer and User-Agent headers.
 */

export const BUILTIN_CATEGORIES = ["sqli", "xss", "traversal"] as const;
export type BuiltinCategory = typeof BUILTIN_CATEGORIES[number];

export interface BuiltinRule {
  readonly id: string;
  readonly category: BuiltinCategory;
  readonly description: string;
  readonly pattern: string;
}

/** Header values the built-in rules inspect besides path, query and body. */
export const BUILTIN_HEADERS = ["cookie", "referer", "user-agent"] as const;

export const BUILTIN_RULES: readonly BuiltinRule[] = [
  {
    id: "sqli-union-select",
    category: "sqli",
    description: "UNION [ALL|DISTINCT] SELECT, also with /**/ comments as spaces",
    pattern: String.raw`\bunion(?:\s|/\*[^*]*\*/)+(?:(?:all|distinct)(?:\s|/\*[^*]*\*/)+)?select\b`,
  },
  {
    id: "sqli-tautology",
    category: "sqli",
    description: "a quote or number closed by OR/AND and an always-true comparison (' OR 1=1)",
    pattern: String
      .raw`['"\d]\s*\b(?:or|and)\b\s+['"]?\w+['"]?\s*(?:=|<>|!=|\blike\b)\s*['"]?\w+|['"]\s*\b(?:or|and)\b\s+['"]?\w+['"]?\s*(?:--|#|/\*)`,
  },
  {
    id: "sqli-terminator",
    category: "sqli",
    description: "a closing single quote followed by a statement or a comment (';  '--  '#)",
    pattern: String
      .raw`'\s*(?:;\s*(?:select|insert|update|delete|drop|alter|create|exec|declare|shutdown)\b|--(?:\s|$)|#|/\*)`,
  },
  {
    id: "sqli-stacked-statement",
    category: "sqli",
    description: "a statement break followed by a data-changing statement (; DROP TABLE)",
    pattern: String
      .raw`;\s*(?:drop|truncate|alter)\s+(?:table|database|schema)\b|;\s*(?:exec|execute)\s+\w`,
  },
  {
    id: "sqli-functions",
    category: "sqli",
    description: "timing and file functions and catalog tables used to probe databases",
    pattern: String
      .raw`\b(?:sleep|benchmark|pg_sleep|load_file|extractvalue|updatexml)\s*\(|\bwaitfor\s+delay\b|\binto\s+(?:out|dump)file\b|\binformation_schema\b|\bxp_cmdshell\b`,
  },
  {
    id: "xss-script-tag",
    category: "xss",
    description: "a <script> or </script> tag",
    pattern: String.raw`<\s*/?\s*script\b`,
  },
  {
    id: "xss-event-handler",
    category: "xss",
    description: "an HTML tag with an on* event handler attribute (<img onerror=...>)",
    pattern: String.raw`<[a-z][^>]*[\s/"']on[a-z]+\s*=`,
  },
  {
    id: "xss-script-uri",
    category: "xss",
    description: "javascript:, vbscript: or data:text/html URIs",
    pattern: String.raw`\b(?:javascript|vbscript|livescript)\s*:|\bdata\s*:\s*text/html\b`,
  },
  {
    id: "xss-active-tag",
    category: "xss",
    description:
      "tags that load or run active content (<iframe>, <object>, <embed>, <svg>, <base>)",
    pattern: String.raw`<\s*(?:iframe|frame|object|embed|applet|svg|base|meta\s+http-equiv)\b`,
  },
  {
    id: "traversal-dot-segments",
    category: "traversal",
    description: "../ or ..\\ in a value, also once more percent-encoded (%2e%2e%2f)",
    pattern: String
      .raw`(?:\.|%2e){2}(?:/|\\|%2f|%5c)|(?:/|\\|%2f|%5c)(?:\.|%2e){2}(?:$|[/\\&;]|%2f|%5c)`,
  },
  {
    id: "traversal-system-files",
    category: "traversal",
    description: "well-known system files (/etc/passwd, /proc/self/, win.ini, boot.ini)",
    pattern: String
      .raw`/etc/(?:passwd|shadow|group|hosts)\b|/proc/(?:self|\d+)/|\b(?:win|system|boot)\.ini\b|\bc:\\windows\\`,
  },
  {
    id: "traversal-nul-byte",
    category: "traversal",
    description: "a NUL byte in a value (truncates file names in some back-ends)",
    pattern: String.raw`\x00|%00`,
  },
];
