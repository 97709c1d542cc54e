/** Assertions for tests (node:assert, since the Deno std library comes from JSR, unreachable here). */
import assert from "node:assert/strict";

export const assertEquals: <T>(
  actual: unknown,
  expected: T,
  message?: string,
) => asserts actual is T = assert.deepStrictEqual;
export const assertNotEquals = assert.notDeepStrictEqual;
export const assertOk: (value: unknown, message?: string) => asserts value = assert.ok;
export const assertMatch = (actual: string, re: RegExp, message?: string): void =>
  assert.match(actual, re, message);
export const assertRejects = assert.rejects;
export const assertThrows = assert.throws;

/** Asserts the common JSON error shape and its code; returns the parsed body. */
export async function assertError(
  res: Response,
  status: number,
  code: string,
): Promise<{ error: { code: string; message: string; request_id: string } }> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  const body = JSON.parse(text);
  assert.equal(body?.error?.code, code, `expected code ${code}: ${text}`);
  assert.equal(typeof body.error.message, "string");
  assert.equal(typeof body.error.request_id, "string");
  return body;
}

/** What `p` resolves to, or "timed out" after `ms`: for asserting that something ends in time. */
export async function within<T>(ms: number, p: Promise<T>): Promise<T | "timed out"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<"timed out">((r) => timer = setTimeout(() => r("timed out"), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
