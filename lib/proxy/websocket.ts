/**
 * WebSocket pass-through: which requests are upgrades, which handshakes are
 * refused, and the relay for the listener: bytes (upgrade_tunnel.ts) where
 * the gateway's own server hands over the socket, messages
 * (message_relay.ts) where the runtime accepts the client's side. Either way
 * the handshake goes to the upstream first (upstream_upgrade.ts), so a
 * refused upgrade is the upstream's answer and a dead upstream a 502.
 */
import type { RequestContext } from "../core/context.ts";
import { fieldValue } from "../core/header_fields.ts";
import { NameSet } from "../core/name_set.ts";
import { buildHeaderBlock, type ForwardOptions } from "./forward.ts";
import type { Timeouts, UpstreamTarget } from "./upstream.ts";
import { tunnelUpgrade } from "./upgrade_tunnel.ts";
import { upgradeUpstream } from "./upstream_upgrade.ts";
import { relayMessages } from "./message_relay.ts";
import type { OpenUpgrades } from "./open_upgrades.ts";
import { sessionEnded } from "../observe/upgrade_sessions.ts";
import { canTakeSocket } from "../server/http1/upgrade.ts";
import { connectionOptions } from "../core/connection_options.ts";

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

function namesUpgrade(connection: string | null): boolean {
  return connection !== null && connectionOptions(connection).includes("upgrade");
}

export function relayWebSocket(
  ctx: RequestContext,
  target: UpstreamTarget,
  forward: ForwardOptions,
  timeouts: Timeouts,
  upgrades: OpenUpgrades,
): Promise<Response> {
  // Bytes where the listener hands over its socket; messages where the runtime takes the client.
  return ctx.incoming.runtimeWebSocket
    ? relayAsMessages(ctx, target, forward, timeouts, upgrades)
    : tunnelUpgrade(ctx, target, forward, timeouts, upgrades);
}

/** Fields of the upstream's 101 the runtime writes itself for the client's side. */
const RUNTIME_SWITCH_FIELDS = new NameSet([
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "date",
]);

async function relayAsMessages(
  ctx: RequestContext,
  target: UpstreamTarget,
  forward: ForwardOptions,
  timeouts: Timeouts,
  upgrades: OpenUpgrades,
): Promise<Response> {
  // This relay reads frames as they are: an extension the upstream took would garble them.
  const block = withoutField(buildHeaderBlock(ctx, forward), "sec-websocket-extensions");
  const up = await upgradeUpstream(ctx, target, block, timeouts);
  if (up instanceof Response) return up;
  const fields = up.head.headers;
  // Its Sec-WebSocket-Accept was checked by upgradeUpstream.
  if (fieldValue(fields, "sec-websocket-extensions") !== null) {
    up.release();
    return ctx.refuse("upstream_error", { message: "The upstream's 101 is not a WebSocket's" });
  }
  const protocol = fieldValue(fields, "sec-websocket-protocol");
  let upgraded: Deno.WebSocketUpgrade;
  try {
    upgraded = Deno.upgradeWebSocket(ctx.request, protocol === null ? {} : { protocol });
  } catch {
    // A subprotocol the client did not offer.
    up.release();
    return ctx.refuse("upstream_error", {
      message: "The upstream chose a subprotocol not offered",
    });
  }
  const answer = upgraded.response.headers;
  for (const [name, value] of fields) {
    if (!RUNTIME_SWITCH_FIELDS.has(name)) answer.append(name, value);
  }
  relayMessages(upgraded.socket, up, upgrades, (sent, received) => {
    sessionEnded(ctx, sent, received);
  });
  return upgraded.response;
}

/** A header block without the lines of one field (`name` lower-case, as the block has it). */
function withoutField(block: string, name: string): string {
  const prefix = `${name}:`;
  return block.split("\r\n").filter((line) => !line.toLowerCase().startsWith(prefix)).join("\r\n");
}
