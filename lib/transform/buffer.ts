/**
 * Reading a body into memory up to a limit. Past the limit nothing is lost:
 * the caller gets a stream that yields what was read and then the rest, so a
 * body too large to buffer can still pass through untouched.
 */
import { type Bytes, type ByteString, concat, headWith } from "../proxy/http1/bytes.ts";
import { withBodySize } from "../observe/body_size.ts";

export type Buffered =
  | { kind: "whole"; bytes: Bytes }
  | { kind: "over"; body: ReadableStream<Bytes> | Bytes };

/** Reads `body` whole if it is at most `limit` bytes; errors of the stream are thrown. */
export async function bufferUpTo(
  given: ReadableStream<Bytes> | Bytes | ByteString | null,
  limit: number,
): Promise<Buffered> {
  if (given === null) return { kind: "whole", bytes: new Uint8Array(0) };
  const body = typeof given === "string" ? headWith(given) : given;
  if (body instanceof Uint8Array) {
    return body.length <= limit ? { kind: "whole", bytes: body } : { kind: "over", body };
  }
  const reader = body.getReader();
  const chunks: Bytes[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return { kind: "whole", bytes: concat(chunks, total) };
      chunks.push(value);
      total += value.length;
      if (total > limit) return { kind: "over", body: prepend(chunks, reader) };
    }
  } catch (e) {
    reader.releaseLock();
    throw e;
  }
}

/** A stream of `head` followed by what is left in `reader`. */
function prepend(head: Bytes[], reader: ReadableStreamDefaultReader<Bytes>): ReadableStream<Bytes> {
  let i = 0;
  return new ReadableStream<Bytes>({
    async pull(c) {
      if (i < head.length) {
        c.enqueue(head[i++]!);
        return;
      }
      const { done, value } = await reader.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** The response with another body (its length recomputed when the body is bytes). */
export function withBody(res: Response, body: ReadableStream<Bytes> | Bytes): Response {
  const out = new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
  if (!(body instanceof Uint8Array)) return out;
  out.headers.delete("content-length");
  return withBodySize(out, body.length);
}

/**
 * Whether a Content-Type names JSON: `application/json`, `application/*+json`,
 * and the older `text/json`, `application/x-json` and `text/x-json`, which
 * common frameworks still parse as JSON (a body the rules skipped would reach
 * them unedited).
 */
export function isJsonType(contentType: string | null): boolean {
  return contentType !== null && JSON_TYPE.test(contentType);
}

const JSON_TYPE =
  /^\s*(?:application\/(?:[a-z0-9!#$&^_.+-]+\+)?json|(?:application|text)\/x-json|text\/json)\s*(?:;|$)/i;

/** Whether a Content-Encoding names a coding other than `identity`. */
export function isEncoded(contentEncoding: string | null): boolean {
  return contentEncoding !== null && !/^\s*(?:identity\s*)?$/i.test(contentEncoding);
}

/**
 * Whether a Content-Type value holds more than one media type: repeated
 * fields, joined by ", ", leave a comma outside any quoted parameter value.
 * Recipients disagree on which of them counts (RFC 9110 §8.3 allows one).
 */
export function isRepeatedType(contentType: string): boolean {
  return !ONE_MEDIA_TYPE.test(contentType);
}

const ONE_MEDIA_TYPE = /^(?:[^,"]|"(?:[^"\\]|\\.)*(?:"|$))*$/;
