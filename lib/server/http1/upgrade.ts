/**
 * Protocol upgrades (WebSocket) on listeners that can hand their socket over:
 * the gateway's own HTTP/1.1 server, and `node:https` (mTLS) listeners. The
 * proxy takes the client's socket and relays bytes both ways once the
 * upstream has switched protocols, so frames, extensions and close codes pass
 * through untouched.
 */
import type { ByteSocket } from "../../proxy/http1/socket_io.ts";
import type { ClientConnection } from "./client_connection.ts";

/** Per upgrade request, how to take its socket (null once taken or gone). */
const takers = new WeakMap<Request, () => TakenSocket | null>();

export interface TakenSocket {
  socket: ByteSocket;
  /** Bytes the client sent after its request head (the first frames). */
  buffered: Uint8Array;
}

export function registerUpgrade(req: Request, conn: ClientConnection): void {
  takers.set(req, () => conn.hijacked ? null : { socket: conn.socket, buffered: conn.hijack() });
}

/** For a listener of another kind: `take` hands over the socket `req` arrived on. */
export function registerSocketTaker(req: Request, take: () => TakenSocket | null): void {
  takers.set(req, take);
}

/** Whether `req` arrived on a connection that can be taken over. */
export function canTakeSocket(req: Request): boolean {
  return takers.has(req);
}

/** Takes the connection away from the HTTP server; it writes nothing more on it. */
export function takeSocket(req: Request): TakenSocket | null {
  const take = takers.get(req);
  if (take === undefined) return null;
  takers.delete(req);
  return take();
}

/**
 * The handler's answer once a socket has been taken: the Fetch standard keeps
 * `Response` statuses within 200-599, but logs and metrics must say 101.
 */
export function switchedProtocols(): Response {
  const res = new Response(null, { status: 200 });
  Object.defineProperty(res, "status", { value: 101 });
  return res;
}
