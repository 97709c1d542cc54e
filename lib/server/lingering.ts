/**
 * What the client still sends after an answer given before its request body
 * was read (a refusal, an upstream that answered early) is read and dropped
 * instead of left unread. Closing a socket with unread bytes resets the
 * connection, and a client still writing then fails before it reads the
 * answer; leaving them unread stalls it (RFC 9112 §9.6). The limits are
 * nginx's `lingering_time` and `lingering_timeout`.
 */

/** How long the client may go on sending after the answer, */
export const LINGER_MS = 30_000;
/** and how long it may pause. */
export const LINGER_IDLE_MS = 5_000;

/**
 * Reads and drops a request body nothing took (the runtime's server keeps the
 * connection open while it is unread), within the linger limits.
 */
export function dropUnreadBody(body: ReadableStream<Uint8Array> | null): void {
  if (body === null || body.locked) return;
  const reader = body.getReader();
  const end = performance.now() + LINGER_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stopIn = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => reader.cancel().catch(() => {}), ms);
  };
  (async () => {
    while (true) {
      stopIn(Math.min(LINGER_IDLE_MS, end - performance.now()));
      if ((await reader.read()).done) break;
    }
  })().catch(() => {}).finally(() => clearTimeout(timer));
}
