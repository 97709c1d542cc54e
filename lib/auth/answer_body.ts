/**
 * Reading the answer of an identity provider's endpoint (JWKS, introspection)
 * up to a size. `res.text()` reads whatever comes: one 200 MB answer took the
 * process from 87 to 721 MB, far past the 150 MB an isolate is given, and
 * either endpoint is one misconfiguration or compromise away from sending it.
 */

const decoder = new TextDecoder();

/** The answer's text; throws, cancelling the rest, when it is longer than `maxBytes`. */
export async function answerText(res: Response, maxBytes: number, what: string): Promise<string> {
  const tooLarge = () => new Error(`the ${what} is larger than ${maxBytes} bytes`);
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (res.body === null) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return decoder.decode(all);
}
