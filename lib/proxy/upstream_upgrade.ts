/**
 * The upstream's side of a protocol upgrade (a WebSocket handshake), shared
 * by both relays: the request goes out on a connection of its own, and what
 * comes back is either the upstream's 101 on that connection, or the answer
 * the client gets instead. A failure to reach the upstream is a 502 or 504
 * like any other request's, a malformed answer a 502 `upstream_error`, and a
 * refusal the upstream's own answer, body included.
 */
import type { RequestContext } from "../core/context.ts";
import type { ErrorCode } from "../core/errors.ts";
import type { UpstreamConnection } from "./http1/connection.ts";
import type { TargetPool } from "./http1/pool.ts";
import { ProtocolError, readResponseHead, type ResponseHead } from "./http1/response_head.ts";
import { UpstreamError } from "./http1/errors.ts";
import { responseBody } from "./http1/body.ts";
import { fieldValue } from "../core/header_fields.ts";
import { respondWith } from "./response.ts";
import type { Timeouts, UpstreamTarget } from "./upstream.ts";

export interface SwitchedUpstream {
  conn: UpstreamConnection;
  /** The 101's head: its end-to-end fields (Sec-WebSocket-*, Set-Cookie, ...). */
  head: ResponseHead;
  /** Closes the connection and gives its place in the pool back. */
  release(): void;
}

/**
 * `headerBlock` is the request's field lines (buildHeaderBlock), without the
 * upgrade's own two. The handshake is timed as any exchange: `connectMs` for
 * the connect, `firstByteMs` for the answer's head, `requestMs` for both; the
 * session that follows is not.
 */
export async function upgradeUpstream(
  ctx: RequestContext,
  target: UpstreamTarget,
  headerBlock: string,
  timeouts: Timeouts,
): Promise<SwitchedUpstream | Response> {
  const pool = target.pool;
  ctx.upstreamTarget = target.id;
  ctx.attempts++;
  const started = performance.now();
  const deadline = started + timeouts.requestMs;
  const request = `${ctx.method} ${ctx.upstreamPath} HTTP/1.1\r\n${headerBlock}` +
    `upgrade: ${ctx.headers.get("upgrade")}\r\nconnection: upgrade\r\n\r\n`;
  let answer = await handshake(pool, request, timeouts, deadline, false);
  // A parked connection that died unanswered: the handshake, a GET without a body, goes again
  // once on a new connection (never another parked one, which may be as dead), as requests do.
  if (answer === STALE) answer = await handshake(pool, request, timeouts, deadline, true);
  if (typeof answer === "string") return ctx.refuse(answer === STALE ? "bad_gateway" : answer);
  ctx.upstreamMs = performance.now() - started;
  const { conn, head } = answer;
  const release = () => pool.release(conn, false);
  if (head.status === 101 && !head.upgrade) {
    // A 101 that names no protocol is the upstream's fault, as a malformed head.
    release();
    return ctx.refuse("upstream_error");
  }
  if (head.status === 101 && !await acceptsKey(head, ctx.headers.get("sec-websocket-key"))) {
    // A 101 to anything (a status echo) is no handshake: relayed, the client's next bytes would
    // reach the upstream as requests the gateway never parsed, routed or checked.
    release();
    return ctx.refuse("upstream_error", { message: "The upstream's 101 is not a WebSocket's" });
  }
  if (head.status !== 101) {
    // The upstream declined the upgrade: its answer, body and all, tells the client why.
    return respondWith(ctx, {
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body: responseBody(conn, head, ctx.method, release),
      contentLength: head.contentLength,
      reused: false,
    });
  }
  return { conn, head, release };
}

/** What `handshake` answers when a reused connection ended or failed before any answer. */
const STALE = "stale";

/**
 * Sends the handshake on a parked connection (`fresh`: a new one) and reads
 * the answer's head; or the error the client gets, or STALE.
 */
async function handshake(
  pool: TargetPool,
  request: string,
  timeouts: Timeouts,
  deadline: number,
  fresh: boolean,
): Promise<{ conn: UpstreamConnection; head: ResponseHead } | ErrorCode | typeof STALE> {
  let conn: UpstreamConnection;
  try {
    const connectMs = Math.min(timeouts.connectMs, deadline - performance.now());
    conn = fresh ? await pool.open(connectMs) : await pool.acquire(connectMs);
  } catch (e) {
    return e instanceof UpstreamError && e.kind === "connect_timeout"
      ? "upstream_timeout"
      : "bad_gateway";
  }
  const reused = conn.uses > 0;
  let head: ResponseHead | null;
  try {
    await conn.writeHead(request);
    const waitMs = Math.min(timeouts.firstByteMs, deadline - performance.now());
    head = await withTimeout(readResponseHead(conn), waitMs);
  } catch (e) {
    pool.release(conn, false);
    if ((e as Error).name === "TimeoutError") return "upstream_timeout";
    if (e instanceof ProtocolError) return "upstream_error";
    return reused ? STALE : "bad_gateway";
  }
  if (head === null) {
    pool.release(conn, false);
    return reused ? STALE : "bad_gateway";
  }
  return { conn, head };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException("Upgrade timed out", "TimeoutError")), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Whether a 101 carries the Sec-WebSocket-Accept that proves a WebSocket handshake (RFC 6455 §4.1). */
async function acceptsKey(head: ResponseHead, key: string | null): Promise<boolean> {
  const accept = fieldValue(head.headers, "sec-websocket-accept");
  return key !== null && accept !== null && accept === await acceptFor(key);
}

/** RFC 6455's Sec-WebSocket-Accept for a key. */
async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + WS_GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
