/**
 * WebSocket pass-through: the gateway opens the upstream socket first, so a
 * refused upstream is an ordinary 502, then upgrades the client with the
 * subprotocol the upstream chose and relays messages and closes both ways.
 */
import type { RequestContext } from "../core/context.ts";
import { buildHeaderBlock, type ForwardOptions } from "./forward.ts";
import type { UpstreamTarget } from "./upstream.ts";
import { tunnelUpgrade } from "./upgrade_tunnel.ts";
import { canTakeSocket } from "../server/http1/upgrade.ts";

/** Handshake fields the WebSocket client sets itself. */
const HANDSHAKE = new Set([
  "host",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "sec-websocket-accept",
]);

/**
 * An Upgrade the Connection field does not name is ignored (RFC 9110 §7.8):
 * the request is then an ordinary GET, its Upgrade dropped as hop-by-hop.
 * The gateway's own parsers (plain and `node:https` listeners) decided that
 * already and registered the socket; `Deno.serve` (TLS) leaves it to us.
 */
export function isWebSocketUpgrade(ctx: RequestContext): boolean {
  if (ctx.headers.get("upgrade")?.toLowerCase() !== "websocket") return false;
  return ctx.incoming.runtimeWebSocket
    ? namesUpgrade(ctx.headers.get("connection"))
    : canTakeSocket(ctx.request);
}

const HANDSHAKE_KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * The refusal of a handshake RFC 6455 §4.2.1 calls invalid, or null: it is
 * answered here, before any upstream connection, since upstreams are lenient
 * (Deno's switches a POST, a bad key, version 8) and a body sent with the
 * handshake would reach the upstream as the first frames.
 */
export function handshakeRefusal(ctx: RequestContext): Response | null {
  const h = ctx.headers;
  let problem: string | null = null;
  if (ctx.method !== "GET") problem = `A WebSocket handshake is a GET, not ${ctx.method}`;
  else if (h.get("transfer-encoding") !== null || (h.get("content-length") ?? "0") !== "0") {
    problem = "A WebSocket handshake has no body";
  } else if (!HANDSHAKE_KEY.test(h.get("sec-websocket-key") ?? "")) {
    problem = "Sec-WebSocket-Key must be one base64-encoded 16-byte value";
  }
  if (problem !== null) return ctx.refuse("bad_request", { message: problem });
  if (h.get("sec-websocket-version") === "13") return null;
  // The version this gateway relays, named as RFC 6455 §4.4 asks.
  return ctx.refuse("bad_request", {
    message: "Sec-WebSocket-Version must be 13",
    headers: { "sec-websocket-version": "13" },
  });
}

/** Whether a Connection value lists the `upgrade` option (tokens around optional whitespace). */
function namesUpgrade(connection: string | null): boolean {
  if (connection === null) return false;
  for (const option of connection.split(",")) {
    if (option.trim().toLowerCase() === "upgrade") return true;
  }
  return false;
}

export async function relayWebSocket(
  ctx: RequestContext,
  target: UpstreamTarget,
  forward: ForwardOptions,
  connectTimeoutMs: number,
): Promise<Response> {
  const req = ctx.request;
  // The gateway's own HTTP/1.1 server relays the upgraded connection as bytes.
  if (canTakeSocket(req)) return tunnelUpgrade(ctx, target, forward, connectTimeoutMs);
  // Headers become unreadable once the request is upgraded: read them now.
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter((p) => p !== "");
  const headers = forwardedHeaders(buildHeaderBlock(ctx, forward));
  const t = target.pool.target;
  const url = `${t.tls ? "wss" : "ws"}://${t.authority}${ctx.upstreamPath}`;
  ctx.upstreamTarget = target.id;
  ctx.attempts++;

  const started = performance.now();
  let upstream: WebSocket;
  try {
    upstream = await openUpstream(url, protocols, headers, connectTimeoutMs);
  } catch (e) {
    return ctx.refuse((e as Error).name === "TimeoutError" ? "upstream_timeout" : "bad_gateway");
  }
  ctx.upstreamMs = performance.now() - started;

  let upgraded: Deno.WebSocketUpgrade;
  try {
    upgraded = Deno.upgradeWebSocket(req, upstream.protocol ? { protocol: upstream.protocol } : {});
  } catch {
    // A handshake the runtime refuses (no key, say): the upstream socket must not outlive it.
    upstream.close();
    return ctx.refuse("bad_request");
  }
  const { socket: client, response } = upgraded;
  client.binaryType = "arraybuffer";
  upstream.binaryType = "arraybuffer";
  // Upstream messages, and its close, can arrive before the client side has finished
  // opening, when a close does nothing.
  const early: (string | ArrayBuffer)[] = [];
  let earlyClose: { code: number; reason: string } | null = null;
  const closeClient = (code: number, reason: string) => {
    if (client.readyState === WebSocket.CONNECTING) earlyClose ??= { code, reason };
    else closeWith(client, code, reason);
  };
  client.onopen = () => {
    for (const m of early) client.send(m);
    early.length = 0;
    if (earlyClose !== null) closeWith(client, earlyClose.code, earlyClose.reason);
  };
  upstream.onmessage = (e) => {
    if (client.readyState === WebSocket.OPEN) client.send(e.data);
    else if (client.readyState === WebSocket.CONNECTING) early.push(e.data);
  };
  client.onmessage = (e) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(e.data);
  };
  upstream.onclose = (e) => closeClient(e.code, e.reason);
  client.onclose = (e) => closeWith(upstream, e.code, e.reason);
  upstream.onerror = () => closeClient(1011, "upstream error");
  client.onerror = () => closeWith(upstream, 1001, "client gone");
  return response;
}

function openUpstream(
  url: string,
  protocols: string[],
  headers: [string, string][],
  timeoutMs: number,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { protocols, headers });
    const timer = setTimeout(() => {
      ws.close();
      reject(new DOMException("WebSocket connect timed out", "TimeoutError"));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onerror = null;
      ws.onclose = null;
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error("WebSocket upstream refused the connection"));
    };
  });
}

/** Codes a peer may not send in a close frame (RFC 6455 §7.4.1) become a plain or error close. */
function closeWith(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
  const sendable = code === 1000 || (code >= 3000 && code <= 4999) ||
    (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006);
  try {
    ws.close(sendable ? code : code === 1005 ? 1000 : 1011, reason.slice(0, 120));
  } catch {
    ws.close();
  }
}

function forwardedHeaders(block: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    if (!HANDSHAKE.has(name)) out.push([name, line.slice(colon + 1).trim()]);
  }
  return out;
}
