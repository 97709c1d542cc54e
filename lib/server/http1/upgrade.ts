/**
 * Protocol upgrades (WebSocket) on listeners that can hand their socket over:
 * the gateway's own HTTP/1.1 server, and `node:https` (mTLS) listeners. The
 * proxy takes the client's socket and relays bytes both ways once the
 * upstream has switched protocols, so frames, extensions and close codes pass
 * through untouched.
 */
import type { ByteSocket } from "../../proxy/http1/socket_io.ts";
import { ParsedResponse, unreadFields } from "../../core/parsed_response.ts";
import type { FieldList } from "../../core/header_fields.ts";
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
function takeSocket(req: Request): TakenSocket | null {
  const take = takers.get(req);
  if (take === undefined) return null;
  takers.delete(req);
  return take();
}

/** An upgrade the upstream accepted, waiting for the pipeline's answer to the client. */
export interface PendingSwitch {
  /** Writes the 101 with `fields` (as the pipeline left them) on `client`, then relays. */
  start(client: TakenSocket, fields: FieldList): void;
  /** The client gets another answer, or is gone: lets go of the upstream. */
  abandon(): void;
}

/** Per upgrade request, its switch and the answer that carries it out. */
const switches = new WeakMap<Request, { answer: Response; relay: PendingSwitch }>();

/**
 * The handler's answer to an upgrade the upstream accepted: a 101 with the
 * upstream's end-to-end fields, which the pipeline edits like any answer's
 * (request id, header transforms) before the listener has `relay` write it.
 * The Fetch standard keeps `Response` statuses within 200-599, but logs and
 * metrics must say 101.
 */
export function switchedProtocols(
  req: Request,
  fields: [string, string][],
  relay: PendingSwitch,
): Response {
  const answer = new ParsedResponse(null, { status: 200 }, fields);
  Object.defineProperty(answer, "status", { value: 101 });
  switches.set(req, { answer, relay });
  return answer;
}

/**
 * Called by the listener with the handler's answer to an upgrade request:
 * when it is the switch's 101, takes the socket and starts the relay; else
 * the upstream is let go. True when the listener must write nothing more.
 */
export function completeUpgrade(req: Request, res: Response): boolean {
  const pending = switches.get(req);
  if (pending === undefined) return false;
  switches.delete(req);
  if (res !== pending.answer) {
    pending.relay.abandon();
    return false;
  }
  const client = takeSocket(req);
  if (client === null) {
    pending.relay.abandon();
    return true;
  }
  pending.relay.start(client, unreadFields(res) ?? fieldsOf(res.headers));
  return true;
}

function fieldsOf(headers: Headers): [string, string][] {
  const list: [string, string][] = [];
  headers.forEach((value, name) => list.push([name, value]));
  return list;
}
