/**
 * Protocol upgrades (WebSocket) on the gateway's own HTTP/1.1 server: the
 * proxy takes the client's socket and relays bytes both ways once the
 * upstream has switched protocols, so frames, extensions and close codes
 * pass through untouched.
 */
import type { ClientConnection } from "./client_connection.ts";

const upgradable = new WeakMap<Request, ClientConnection>();

export interface TakenSocket {
  socket: Deno.Conn;
  /** Bytes the client sent after its request head (the first frames). */
  buffered: Uint8Array;
}

export function registerUpgrade(req: Request, conn: ClientConnection): void {
  upgradable.set(req, conn);
}

/** Whether `req` arrived on a connection that can be taken over. */
export function canTakeSocket(req: Request): boolean {
  return upgradable.has(req);
}

/** Takes the connection away from the HTTP server; it writes nothing more on it. */
export function takeSocket(req: Request): TakenSocket | null {
  const conn = upgradable.get(req);
  if (conn === undefined || conn.hijacked) return null;
  upgradable.delete(req);
  return { socket: conn.socket, buffered: conn.hijack() };
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
