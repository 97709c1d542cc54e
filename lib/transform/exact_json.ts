/**
 * JSON parsing that keeps every number as it was written. A JavaScript number
 * holds 15-17 significant digits, so a parse/serialise round trip turns
 * `12345678901234567890` into `12345678901234567000`, `1.10` into `1.1`,
 * `1e3` into `1000` and `-0` into `0`: a body edited by field rules (or
 * merged by an aggregation) would change values no rule named. Such numbers
 * are parsed as raw JSON text (`JSON.rawJSON`), which `JSON.stringify` writes
 * back byte for byte.
 */

interface SourceContext {
  source?: string;
}

/** The parts of JSON (V8, "JSON.parse source text access") the bundled TS types lack. */
interface SourceJson {
  parse(
    text: string,
    reviver: (this: unknown, key: string, value: unknown, context: SourceContext) => unknown,
  ): unknown;
  rawJSON(text: string): object;
  isRawJSON(value: unknown): boolean;
}

const NATIVE = JSON as unknown as SourceJson;

/**
 * Text that may hold a number a round trip would change: an exponent, a
 * fraction ending in 0, `-0`, a magnitude under 1e-6 (written with an
 * exponent by JSON.stringify), or 16 or more digits (past what a double
 * keeps exactly; also numbers from 1e21 up). A number with none of these
 * comes back as written, so bodies without one skip the slower exact parse.
 * Strings that look alike only cost that slower parse.
 */
const INEXACT = /[0-9][eE]|\.[0-9]*0(?![0-9])|-0(?![.0-9])|\.0{6}|[0-9.]{16}/;

function keepSource(_key: string, value: unknown, context: SourceContext): unknown {
  const source = context.source;
  if (typeof value !== "number" || source === undefined || String(value) === source) return value;
  return NATIVE.rawJSON(source);
}

/** JSON.parse, except that numbers a round trip would change stay as written; throws alike. */
export function parseExactJson(text: string): unknown {
  return INEXACT.test(text) ? NATIVE.parse(text, keepSource) : JSON.parse(text);
}

/** Whether `value` is a number kept as written (a leaf, though typeof says "object"). */
export function isRawJson(value: unknown): boolean {
  return NATIVE.isRawJSON(value);
}
