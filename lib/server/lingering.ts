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
 * Calls `expire` once a linger is over: `LINGER_IDLE_MS` after the last
 * `touch()` (or the start), and `LINGER_MS` after the start at the latest.
 * `stop()` when it ended otherwise.
 */
export function lingerLimits(expire: () => void): { touch(): void; stop(): void } {
  const end = performance.now() + LINGER_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(expire, Math.min(LINGER_IDLE_MS, end - performance.now()));
  };
  touch();
  return { touch, stop: () => clearTimeout(timer) };
}

/**
 * Reads and drops a request body nothing took (the runtime's server keeps the
 * connection open while it is unread), within the linger limits.
 */
export function dropUnreadBody(body: ReadableStream<Uint8Array> | null): void {
  if (body === null || body.locked) return;
  const reader = body.getReader();
  const limits = lingerLimits(() => reader.cancel().catch(() => {}));
  (async () => {
    while (!(await reader.read()).done) limits.touch();
  })().catch(() => {}).finally(limits.stop);
}

/** The part of a `node:net` socket a linger needs. */
interface NodeSocket {
  destroySoon(): void;
  end(): void;
  destroy(): void;
  on(event: "data", fn: () => void): void;
  once(event: "close", fn: () => void): void;
}

/**
 * Listeners served by `node:https`: node ends a connection it answered with
 * `Connection: close` by `destroySoon()`, which closes the socket as soon as
 * the answer is flushed, unread bytes or not. Called for a request whose body
 * had not all arrived by the answer: on this socket, that close becomes a
 * linger instead (half-close, then node's parser goes on reading and dropping
 * the body until the client closes, within the limits above). A shutdown
 * does not wait for it: the listener closes every connection once its own
 * requests are answered.
 */
export function lingerOnNodeClose(socket: NodeSocket): void {
  socket.destroySoon = () => {
    const limits = lingerLimits(() => socket.destroy());
    socket.on("data", limits.touch);
    socket.once("close", limits.stop);
    socket.end();
  };
}
