/**
 * A request that switched protocols (a WebSocket) is recorded when its
 * session ends, not at its 101: it is in flight while open, and its duration
 * and the bytes relayed each way are the request's. The observer leaves here
 * what to record; the relay reports the end, once.
 */
import type { RequestContext } from "../core/context.ts";

type SessionEnd = (bytesIn: number, bytesOut: number) => void;

const sessions = new WeakMap<RequestContext, SessionEnd>();

export function awaitSessionEnd(ctx: RequestContext, end: SessionEnd): void {
  sessions.set(ctx, end);
}

/** The session of `ctx` is over (or never began: 0 bytes). */
export function sessionEnded(ctx: RequestContext, bytesIn: number, bytesOut: number): void {
  const end = sessions.get(ctx);
  if (end === undefined) return;
  sessions.delete(ctx);
  end(bytesIn, bytesOut);
}
