/**
 * A WebSocket upgrade relayed as bytes: the handshake goes to the upstream on
 * a connection of its own; once the upstream answers 101, the pipeline's 101
 * (see switchedProtocols) is written on the client's socket, taken from the
 * HTTP server, and both sockets are joined until either side closes. A
 * refusal by the upstream is forwarded as its status, a failure to reach it
 * is a 502 or 504 like any other request.
 */
import type { RequestContext } from "../core/context.ts";
import { headWith } from "./http1/bytes.ts";
import type { UpstreamConnection } from "./http1/connection.ts";
import { ProtocolError, readResponseHead, type ResponseHead } from "./http1/response_head.ts";
import { UpstreamError } from "./http1/errors.ts";
import { responseBody } from "./http1/body.ts";
import { respondWith } from "./response.ts";
import { buildHeaderBlock, type ForwardOptions } from "./forward.ts";
import type { UpstreamTarget } from "./upstream.ts";
import { switchedProtocols } from "../server/http1/upgrade.ts";
import { NameSet } from "../core/name_set.ts";
import { type ByteSocket, closeQuietly, copySocket, writeAllTo } from "./http1/socket_io.ts";

const COPY_CHUNK = 32 * 1024;

export async function tunnelUpgrade(
  ctx: RequestContext,
  target: UpstreamTarget,
  forward: ForwardOptions,
  timeoutMs: number,
): Promise<Response> {
  const req = ctx.request;
  const pool = target.pool;
  ctx.upstreamTarget = target.id;
  ctx.attempts++;
  const started = performance.now();
  let upstream: UpstreamConnection;
  try {
    upstream = await pool.acquire(timeoutMs);
  } catch (e) {
    return ctx.refuse(
      e instanceof UpstreamError && e.kind === "connect_timeout"
        ? "upstream_timeout"
        : "bad_gateway",
    );
  }
  let head: ResponseHead | null;
  try {
    // The handshake's own fields (Sec-WebSocket-*) are end-to-end: the header block has them.
    const block =
      `${req.method} ${ctx.upstreamPath} HTTP/1.1\r\n${buildHeaderBlock(ctx, forward)}` +
      `upgrade: ${req.headers.get("upgrade")}\r\nconnection: upgrade\r\n\r\n`;
    await upstream.writeHead(block);
    head = await withTimeout(readResponseHead(upstream), timeoutMs);
  } catch (e) {
    pool.release(upstream, false);
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
    pool.release(upstream, false);
    return ctx.refuse(head === null ? "bad_gateway" : "upstream_error");
  }
  if (head.status !== 101) {
    // The upstream declined the upgrade: its answer, body and all, tells the client why.
    return respondWith(ctx, {
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body: responseBody(upstream, head, req.method, () => pool.release(upstream, false)),
      contentLength: head.contentLength,
      reused: false,
    });
  }
  const upgrade = req.headers.get("upgrade");
  return switchedProtocols(req, head.headers, {
    start(client, fields) {
      let reply = "HTTP/1.1 101 Switching Protocols\r\n";
      for (const [name, value] of fields) {
        if (!NOT_IN_SWITCH.has(name)) reply += `${name}: ${value}\r\n`;
      }
      reply += `upgrade: ${upgrade}\r\nconnection: upgrade\r\n\r\n`;
      join(client.socket, client.buffered, upstream, headWith(reply)).finally(() =>
        pool.release(upstream, false)
      );
    },
    abandon: () => pool.release(upstream, false),
  });
}

/** Fields of the 101 this tunnel writes itself, or that have no place in it. */
const NOT_IN_SWITCH = new NameSet([
  "connection",
  "upgrade",
  "keep-alive",
  "transfer-encoding",
  "content-length",
]);

async function join(
  client: ByteSocket,
  clientEarly: Uint8Array,
  upstream: UpstreamConnection,
  reply: Uint8Array,
): Promise<void> {
  const closeBoth = () => {
    closeQuietly(client);
    upstream.close();
  };
  try {
    await writeAllTo(client, reply);
    if (clientEarly.length > 0) await upstream.writeAll(clientEarly);
    const early = upstream.buf.slice(upstream.start, upstream.end);
    if (early.length > 0) await writeAllTo(client, early);
  } catch {
    closeBoth();
    return;
  }
  await Promise.race([
    copySocket(client, upstream.socket, COPY_CHUNK),
    copySocket(upstream.socket, client, COPY_CHUNK),
  ]);
  closeBoth();
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException("Upgrade timed out", "TimeoutError")), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
