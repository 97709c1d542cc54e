/** Percent-decoding for inspection: tolerant, because attack payloads are often malformed on purpose. */

const ESCAPE = /%([0-9a-fA-F]{2})/g;

/** Decodes `%XX` escapes (UTF-8 when well formed, byte by byte otherwise); `+` as space for forms. */
export function decodeForInspection(s: string, plusAsSpace: boolean): string {
  const text = plusAsSpace && s.includes("+") ? s.replaceAll("+", " ") : s;
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))/g;
const JSON_SIMPLE: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/**
 * Decodes the escapes of JSON strings (`\n`, `\"`, `\\`, `\u003c`): in JSON a
 * backslash starts an escape, so `wait...\n` is an ellipsis and a newline, not
 * `..\`; and `\u003cscript` is `<script`. Malformed escapes are kept as sent.
 */
export function decodeJsonEscapes(s: string): string {
  if (!s.includes("\\")) return s;
  return s.replace(
    JSON_ESCAPE,
    (_, hex: string | undefined, c: string | undefined) =>
      hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : JSON_SIMPLE[c!]!,
  );
}
