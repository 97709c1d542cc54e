/**
 * The request's header fields as the pipeline reads them: lower-case names
 * and values, in the order received. The HTTP/1.1 listener hands over the
 * fields it parsed; a request the runtime parsed (TLS listeners) is listed
 * from its Headers once. Reads then cost a short array walk: the runtime's
 * Headers lower-cases and filters every field on each get() and sorts them
 * on each walk, several microseconds a request on the hot path.
 *
 * The request's headers never change in the pipeline (edits for the upstream
 * are recorded in `HeaderEdits`), so this view and `Request.headers` agree.
 */
export type FieldList = readonly (readonly [string, string])[];

/** A field name (RFC 9110 §5.1). */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Field lines as a parser accepts them, each after a CRLF: a token, a colon,
 * and a value of visible ASCII, obs-text, spaces and tabs (no obs-fold).
 */
// deno-lint-ignore no-control-regex
const FIELD_LINES = /(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*)*$/y;

/**
 * Whether every field line of a head (a byte string) is well formed, checked
 * in one pass from `lineEnd`, the CRLF ending its first line. Parsers check
 * line by line only a head that fails, to say what is wrong with it.
 */
export function fieldLinesValid(head: string, lineEnd: number): boolean {
  FIELD_LINES.lastIndex = lineEnd;
  return FIELD_LINES.test(head);
}

export class HeaderFields {
  constructor(readonly list: FieldList) {}

  static of(headers: Headers): HeaderFields {
    return new HeaderFields([...headers]);
  }

  /** The field's value, repeated fields joined by ", " as `Headers.get` does; `name` lower-case. */
  get(name: string): string | null {
    return fieldValue(this.list, name);
  }

  /** Whether the field was sent; `name` lower-case. */
  has(name: string): boolean {
    return fieldIndex(this.list, name) >= 0;
  }
}

/** A field's value in a list, repeated fields joined by ", "; `lowerName` lower-case. */
export function fieldValue(list: FieldList, lowerName: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < list.length; i++) {
    const f = list[i]!;
    if (f[0] === lowerName) value = value === null ? f[1] : `${value}, ${f[1]}`;
  }
  return value;
}

/**
 * Makes `headers` on `proto` (a Request or Response subclass) an accessor that
 * fills the runtime's Headers from the object's pending fields on first read.
 * `take` hands those fields over once (null afterwards). An accessor over the
 * runtime's own, since TypeScript types `headers` as a plain property.
 */
export function fillHeadersOnFirstRead<T extends Request | Response>(
  proto: T,
  runtimeHeaders: (this: T) => Headers,
  take: (o: T) => FieldList | null,
): void {
  Object.defineProperty(proto, "headers", {
    get(this: T): Headers {
      const headers = runtimeHeaders.call(this);
      const fields = take(this);
      if (fields !== null) {
        for (let i = 0; i < fields.length; i++) headers.append(fields[i]![0], fields[i]![1]);
      }
      return headers;
    },
  });
}

/** Index of a field's first line in a list, or -1; `lowerName` lower-case. */
export function fieldIndex(list: FieldList, lowerName: string): number {
  for (let i = 0; i < list.length; i++) if (list[i]![0] === lowerName) return i;
  return -1;
}

const LENGTH = /^\d+$/;
const LENGTH_LIST = /^\d+(?:[ \t]*,[ \t]*\d+)*$/;

/**
 * The body length a Content-Length value declares, or null. The listeners
 * accept a field repeated with one value (`5000, 5000`, or two lines, which
 * read joined): that is still a declared length, to be held to the limit
 * before the body is read.
 */
export function declaredLength(value: string): number | null {
  if (LENGTH.test(value)) return Number(value);
  if (!LENGTH_LIST.test(value)) return null;
  const items = value.split(",").map((v) => v.trim());
  return items.every((v) => v === items[0]) ? Number(items[0]) : null;
}

/**
 * `value` without the characters `isEdge` takes at its two ends, in one pass.
 * Not `/^x+|x+$/g`: V8 retries that from every character of an inner run, so
 * `a` + 64 KiB of spaces + `b` cost seconds (quadratic).
 */
export function trimEnds(value: string, isEdge: (c: number) => boolean): string {
  let from = 0;
  let to = value.length;
  while (from < to && isEdge(value.charCodeAt(from))) from++;
  while (to > from && isEdge(value.charCodeAt(to - 1))) to--;
  return from === 0 && to === value.length ? value : value.slice(from, to);
}
