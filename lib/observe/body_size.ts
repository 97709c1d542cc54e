/**
 * A response's body size, declared by whoever built the response from bytes,
 * so that the access log and metrics count it without reading the body. A
 * Content-Length header would say the same, but the runtime serves a response
 * that sets one on a byte body markedly slower than one that lets it frame the
 * body itself; a property on the object costs nothing measurable.
 *
 * A policy that replaces the response gives a new object with no size: its
 * body is then counted as it streams.
 */

const BODY_SIZE = Symbol("bodySize");

interface Sized {
  [BODY_SIZE]?: number;
}

/** Marks `res` as carrying a body of exactly `bytes` bytes; returns it. */
export function withBodySize(res: Response, bytes: number): Response {
  (res as Sized)[BODY_SIZE] = bytes;
  return res;
}

/** The declared body size of `res`, if any. */
export function bodySizeOf(res: Response): number | undefined {
  return (res as Sized)[BODY_SIZE];
}
