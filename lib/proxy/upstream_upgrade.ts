/**
 * The upstream's side of a protocol upgrade (a WebSocket handshake), shared
 * by both relays: the request goes out on a connection of its own, and what
 * comes back is either the upstream's 101 on that connection, or the answer
 * the client gets instead. A failure to reach the upstream is a 502 or 504
 * like any other request's, a malformed answer a 502 `upstream_error`, and a
 * refusal the upstream's own answer, body included.
 */
import type { RequestContext } from "../core/context.ts";
import type { UpstreamConnection } from "./http1/connection.ts";
import { ProtocolError, readResponseHead, type ResponseHead } from "./http1/response_head.ts";
import { UpstreamError } from "./http1/errors.ts";
import { responseBody } from "./http1/body.ts";
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
  let conn: UpstreamConnection;
  try {
    conn = await pool.acquire(Math.min(timeouts.connectMs, timeouts.requestMs));
  } catch (e) {
    return ctx.refuse(
      e instanceof UpstreamError && e.kind === "connect_timeout"
        ? "upstream_timeout"
        : "bad_gateway",
    );
  }
  const release = () => pool.release(conn, false);
  let head: ResponseHead | null;
  try {
    await conn.writeHead(
      `${ctx.method} ${ctx.upstreamPath} HTTP/1.1\r\n${headerBlock}` +
        `upgrade: ${ctx.headers.get("upgrade")}\r\nconnection: upgrade\r\n\r\n`,
    );
    const waitMs = Math.min(timeouts.firstByteMs, deadline - performance.now());
    head = await withTimeout(readResponseHead(conn), waitMs);
  } catch (e) {
    release();
    return ctx.refuse(
      (e as Error).name === "TimeoutError"
        ? "upstream_timeout"
        : e instanceof ProtocolError
        ? "upstream_error"
        : "bad_gateway",
    );
  }
  ctx.upstreamMs = performance.now() - started;
  if (head === null || (head.status === 101 && !head.upgrade)) {
    // No answer; or a 101 that names no protocol, which is the upstream's fault, as a malformed head.
    release();
    return ctx.refuse(head === null ? "bad_gateway" : "upstream_error");
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

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException("Upgrade timed out", "TimeoutError")), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
