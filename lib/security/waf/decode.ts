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
