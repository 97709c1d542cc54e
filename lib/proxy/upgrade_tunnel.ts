/**
 * A WebSocket upgrade relayed as bytes: once the upstream answers 101 (see
 * upstream_upgrade.ts), the pipeline's 101 (see switchedProtocols) is
 * written on the client's socket, taken from the HTTP server, and both
 * sockets are joined until either side closes.
 */
import type { RequestContext } from "../core/context.ts";
import { headWith } from "./http1/bytes.ts";
import type { UpstreamConnection } from "./http1/connection.ts";
import { buildHeaderBlock, type ForwardOptions } from "./forward.ts";
import { upgradeUpstream } from "./upstream_upgrade.ts";
import type { Timeouts, UpstreamTarget } from "./upstream.ts";
import { switchedProtocols, type TakenSocket } from "../server/http1/upgrade.ts";
import type { OpenUpgrades } from "./open_upgrades.ts";
import { NameSet } from "../core/name_set.ts";
import { sessionEnded } from "../observe/upgrade_sessions.ts";
import { type ByteSocket, closeQuietly, copySocket, writeAllTo } from "./http1/socket_io.ts";

const COPY_CHUNK = 32 * 1024;

export async function tunnelUpgrade(
  ctx: RequestContext,
  target: UpstreamTarget,
  forward: ForwardOptions,
  timeouts: Timeouts,
  upgrades: OpenUpgrades,
): Promise<Response> {
  // The handshake's own fields (Sec-WebSocket-*) are end-to-end: the header block has them.
  const up = await upgradeUpstream(ctx, target, buildHeaderBlock(ctx, forward), timeouts);
  if (up instanceof Response) return up;
  const upgrade = ctx.headers.get("upgrade");
  return switchedProtocols(ctx.request, up.head.headers, {
    start(client, fields) {
      let reply = "HTTP/1.1 101 Switching Protocols\r\n";
      for (const [name, value] of fields) {
        if (!NOT_IN_SWITCH.has(name)) reply += `${name}: ${value}\r\n`;
      }
      reply += `upgrade: ${upgrade}\r\nconnection: upgrade\r\n\r\n`;
      const closeBoth = () => {
        closeQuietly(client.socket);
        up.conn.close();
      };
      // At shutdown both connections end: a close frame cannot be put in the middle of a stream.
      const unregister = upgrades.add({ close: closeBoth });
      join(client, up.conn, headWith(reply), closeBoth).then(({ sent, received }) => {
        unregister();
        up.release();
        sessionEnded(ctx, sent, received);
      });
    },
    abandon() {
      up.release();
      sessionEnded(ctx, 0, 0);
    },
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

/** Relays until either side ends; resolves to the bytes relayed each way (past the 101). */
async function join(
  client: TakenSocket,
  upstream: UpstreamConnection,
  reply: Uint8Array,
  closeBoth: () => void,
): Promise<{ sent: number; received: number }> {
  const bytes = { sent: 0, received: 0 };
  const socket = client.socket;
  try {
    await writeAllTo(socket, reply);
    if (client.buffered.length > 0) await upstream.writeAll(client.buffered);
    bytes.sent = client.buffered.length;
    const early = upstream.buf.slice(upstream.start, upstream.end);
    if (early.length > 0) await writeAllTo(socket, early);
    bytes.received = early.length;
  } catch {
    closeBoth();
    return bytes;
  }
  // An end of stream is passed on as a half-close, so that what the other side still sends
  // (the answer to a close frame) arrives. Both connections close once both ways have ended,
  // one has failed, or CLOSE_WAIT_MS after the first end.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const way = (from: ByteSocket, to: ByteSocket, copied: (n: number) => void) =>
    copySocket(from, to, COPY_CHUNK, copied).then(async (clean) => {
      if (!clean) return closeBoth();
      timer ??= setTimeout(closeBoth, CLOSE_WAIT_MS);
      await to.closeWrite().catch(closeBoth);
    });
  await Promise.all([
    way(socket, upstream.socket, (n) => bytes.sent += n),
    way(upstream.socket, socket, (n) => bytes.received += n),
  ]);
  clearTimeout(timer);
  closeBoth();
  return bytes;
}

const CLOSE_WAIT_MS = 5_000;
