/**
 * Reading the answer of an identity provider's endpoint (JWKS, introspection)
 * up to a size. `res.text()` reads whatever comes: one 200 MB answer took the
 * process from 87 to 721 MB, far past the 150 MB an isolate is given, and
 * either endpoint is one misconfiguration or compromise away from sending it.
 */
import { bufferUpTo } from "../transform/buffer.ts";

const decoder = new TextDecoder();

/** The answer's text; throws, cancelling the rest, when it is longer than `maxBytes`. */
export async function answerText(res: Response, maxBytes: number, what: string): Promise<string> {
  const declared = res.headers.get("content-length");
  const buffered = declared !== null && Number(declared) > maxBytes
    ? { kind: "over" as const, body: res.body }
    : await bufferUpTo(res.body as ReadableStream<Uint8Array<ArrayBuffer>> | null, maxBytes);
  if (buffered.kind === "whole") return decoder.decode(buffered.bytes);
  if (buffered.body instanceof ReadableStream) await buffered.body.cancel().catch(() => {});
  throw new Error(`the ${what} is larger than ${maxBytes} bytes`);
}
