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

/**
 * How deep arrays and objects may nest in a body the gateway parses. Deeper,
 * V8 parses at about 400 ns a byte instead of 10 (a 1 MiB body of `[` half a
 * second of a worker), and the field rules, the exact parse and serialising
 * recurse once per level, overflowing the stack past a few thousand. Bodies
 * that real APIs send nest a few levels; serde_json stops at 128.
 */
export const MAX_JSON_DEPTH = 512;

/** JSON nesting deeper than `MAX_JSON_DEPTH`: refused before it is parsed. */
export class JsonDepthError extends Error {
  override name = "JsonDepthError";
  constructor() {
    super(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
}

/** Whether arrays and objects in `text` nest deeper than `max`, brackets in strings aside. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x22) {
      // Skip the string: to the next quote not escaped by an odd run of backslashes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    }
  }
  return false;
}

/**
 * JSON.parse, except that numbers a round trip would change stay as written;
 * throws alike, and `JsonDepthError` for nesting past `MAX_JSON_DEPTH`.
 */
export function parseExactJson(text: string): unknown {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw new JsonDepthError();
  return INEXACT.test(text) ? NATIVE.parse(text, keepSource) : JSON.parse(text);
}

/** Whether `value` is a number kept as written (a leaf, though typeof says "object"). */
export function isRawJson(value: unknown): boolean {
  return NATIVE.isRawJSON(value);
}
