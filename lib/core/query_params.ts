/**
 * The values a query gives one parameter, read as `URLSearchParams` reads
 * them (application/x-www-form-urlencoded: pairs split on `&`, `+` a space,
 * escapes UTF-8, malformed ones kept as written), without parsing the rest.
 *
 * The gateway only ever asks for a few names its config holds. Parsing the
 * whole query built two strings and an array per pair, about 150 ns each in
 * Deno's URLSearchParams (5 ms for 64 KB of `a&a&a`); a pair whose name is not
 * the one asked for costs a comparison of its first bytes here.
 */

/** What the gateway reads of a query; `URLSearchParams` is one. */
export interface QueryReader {
  get(name: string): string | null;
  getAll(name: string): readonly string[];
}

/** A query's parameters, looked up by name on demand; each name is read once. */
export class QueryParams implements QueryReader {
  private readonly read = new Map<string, readonly string[]>();

  /** `query` with or without its leading `?`. */
  constructor(private readonly query: string) {}

  get(name: string): string | null {
    return this.getAll(name)[0] ?? null;
  }

  getAll(name: string): readonly string[] {
    let values = this.read.get(name);
    if (values === undefined) {
      values = queryValues(this.query, name);
      this.read.set(name, values);
    }
    return values;
  }
}

const encoder = new TextEncoder();
// The form decoder keeps a leading BOM (WHATWG "UTF-8 decode without BOM").
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const REPLACEMENT = "\uFFFD";

/** Every value `name` has in `query` (with or without its `?`), in order. */
export function queryValues(query: string, name: string): string[] {
  const param = new ParamName(name);
  const out: string[] = [];
  let start = query.charCodeAt(0) === 0x3f /* ? */ ? 1 : 0;
  while (start <= query.length) {
    let end = query.indexOf("&", start);
    if (end < 0) end = query.length;
    const nameEnd = param.endIn(query, start, end);
    if (nameEnd >= 0) out.push(nameEnd < end ? formDecode(query.slice(nameEnd + 1, end)) : "");
    start = end + 1;
  }
  return out;
}

/** A parameter name, compared with the names of a query's pairs as the form decoder reads them. */
export class ParamName {
  private readonly bytes: Uint8Array;
  // Two malformed names decode to the same U+FFFD: only a decoded name can be compared.
  private readonly byBytes: boolean;

  constructor(readonly name: string) {
    this.bytes = encoder.encode(name);
    this.byBytes = !name.includes(REPLACEMENT);
  }

  /**
   * Where the name of the pair `query[start, end)` ends (its `=`, or `end`)
   * when it is this name, else -1; an empty pair has no name. Decodes as it
   * compares, and stops at the first byte that differs.
   */
  endIn(query: string, start: number, end: number): number {
    if (end === start) return -1;
    if (!this.byBytes) return this.decodedEndIn(query, start, end);
    const want = this.bytes;
    let j = 0;
    let i = start;
    while (i < end) {
      const c = query.charCodeAt(i);
      if (c === 0x3d /* = */) break;
      if (c >= 0x80) return this.decodedEndIn(query, start, end);
      let b = c;
      if (c === 0x2b /* + */) b = 0x20;
      else if (c === 0x25 /* % */ && i + 2 < end) {
        const hi = hexValue(query.charCodeAt(i + 1));
        const lo = hexValue(query.charCodeAt(i + 2));
        if (hi >= 0 && lo >= 0) {
          b = hi * 16 + lo;
          i += 2;
        }
      }
      if (j >= want.length || want[j] !== b) return -1;
      j++;
      i++;
    }
    return j === want.length ? i : -1;
  }

  /** `endIn` by decoding the whole name: for what no byte comparison settles. */
  private decodedEndIn(query: string, start: number, end: number): number {
    let eq = start;
    while (eq < end && query.charCodeAt(eq) !== 0x3d) eq++;
    return formDecode(query.slice(start, eq)) === this.name ? eq : -1;
  }
}

/** A name or value of a pair as the form decoder reads it. */
export function formDecode(raw: string): string {
  if (!raw.includes("%")) {
    return (raw.includes("+") ? raw.replaceAll("+", " ") : raw).toWellFormed();
  }
  const bytes = encoder.encode(raw);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 0x2b) {
      bytes[n++] = 0x20;
      continue;
    }
    if (c === 0x25 && i + 2 < bytes.length) {
      const hi = hexValue(bytes[i + 1]!);
      const lo = hexValue(bytes[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    bytes[n++] = c;
  }
  return decoder.decode(bytes.subarray(0, n));
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
