/**
 * Schema building blocks shared by every section of the configuration. Each one
 * validates and normalises at load time so that nothing on the request path ever
 * parses a duration, a URL or a regular expression.
 */
import { z } from "zod";
import { TOKEN } from "../core/header_fields.ts";
import { linearRegexError } from "../core/linear_regex.ts";

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses `250ms`, `1s`, `1m`, `1h`, `1d` into milliseconds; `null` if malformed. */
export function parseDuration(text: string): number | null {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** A duration written as `250ms`, `1s`, `1m`, `1h` or `1d`; yields milliseconds. */
export const duration = z
  .string()
  .regex(DURATION_RE, { error: "expected a duration such as 500ms, 1s, 1m, 1h or 1d" })
  .transform((s) => parseDuration(s)!)
  .refine((ms) => ms > 0, { error: "expected a duration greater than zero" })
  .meta({ description: "A duration: a number followed by ms, s, m, h or d", examples: ["1s"] });

export const positiveInt = z.number().int().positive();
export const nonNegativeInt = z.number().int().min(0);

/** The longest timer the runtime keeps: from 2^31 ms a `setTimeout` fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;
const TIMER_LIMIT = {
  error: `expected at most ${MAX_TIMER_MS} ms (about 24.8 days): a longer timer would fire at once`,
};
/** Milliseconds a timer waits: more than zero, and within what a timer can hold. */
export const timerMs = positiveInt.max(MAX_TIMER_MS, TIMER_LIMIT);
/** As `timerMs`, zero allowed (no wait). */
export const timerMsOrZero = nonNegativeInt.max(MAX_TIMER_MS, TIMER_LIMIT);
/** Seconds a timer waits, up to 24 days (under `MAX_TIMER_MS`, with room for a margin added). */
const TIMER_SECONDS_LIMIT = {
  error: "expected at most 2073600 s (24 days): a longer timer would fire at once",
};
export const timerSeconds = z.number().positive().max(2_073_600, TIMER_SECONDS_LIMIT);
/** As `timerSeconds`, zero allowed (the setting's "off"). */
export const timerSecondsOrZero = z.number().min(0).max(2_073_600, TIMER_SECONDS_LIMIT);
export const port = z.number().int().min(0).max(65535);

/** An absolute http(s) URL. */
export const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}, { error: "expected an absolute http:// or https:// URL" });

/**
 * A regular expression that request data is matched against. It runs on a
 * linear-time engine (RE2 syntax, `lib/core/linear_regex.ts`): a backtracking
 * one lets one crafted path or header hold an isolate for hours with a
 * pattern as plain as `(a+)+$`. Compiled here, so that a bad one fails at load.
 */
export const linearRegex = z.string().superRefine(async (s, ctx) => {
  const error = await linearRegexError(s);
  if (error) {
    ctx.addIssue({
      code: "custom",
      message: `expected a regular expression in RE2 syntax (matched in linear time): ${error}`,
    });
  }
});

/** An HTTP field name (RFC 9110 token). */
export const headerName = z.string().regex(TOKEN, {
  error: "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
});

/** Fields framing or routing the message: the gateway owns them, config may not set them. */
export const UNTOUCHABLE_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
]);

/** A header name config may set or change: not one that frames or routes the message. */
export const editableHeader = headerName.refine((h) => !UNTOUCHABLE_HEADERS.has(h.toLowerCase()), {
  error: (i) =>
    `expected a header the gateway does not own (${i.input} frames or routes the message)`,
});

export const HTTP_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "TRACE",
  "CONNECT",
] as const;
export const httpMethod = z.preprocess(
  (v) => (typeof v === "string" ? v.toUpperCase() : v),
  z.enum(HTTP_METHODS),
);

/** One item or a list of them (of at least `minItems`); always yields a list. */
export function oneOrMany<T extends z.ZodType>(item: T, minItems = 0) {
  const list = minItems > 0 ? z.array(item).min(minItems) : z.array(item);
  return z.union([item, list]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);
}

/** An HTTP status code. */
export const statusCode = z.number().int().min(100).max(599);
