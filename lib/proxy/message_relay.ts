/**
 * A WebSocket relayed message by message, on listeners whose runtime accepts
 * the client's side (`Deno.upgradeWebSocket` on `Deno.serve`): the client's
 * end is the runtime's WebSocket, the upstream's speaks RFC 6455 on the
 * gateway's own connection (upstream_websocket.ts). Closes pass both ways
 * with their codes; the session ends when the upstream has closed too, or
 * CLOSE_WAIT_MS after the client has if the upstream does not answer.
 */
import { sendableCode, UpstreamWebSocket, WebSocketProtocolError } from "./upstream_websocket.ts";
import type { SwitchedUpstream } from "./upstream_upgrade.ts";
import type { OpenUpgrades } from "./open_upgrades.ts";

/** Upstream messages wait while this much is queued to the client. */
const CLIENT_HIGH_WATER_BYTES = 1024 * 1024;
const DRAIN_POLL_MS = 10;
/**
 * The runtime reads the client whatever the upstream takes (a server
 * WebSocket cannot be paused): past this much queued to the upstream, the
 * session ends rather than buffer without bound.
 */
const MAX_UPSTREAM_BACKLOG_BYTES = 16 * 1024 * 1024;
const CLOSE_WAIT_MS = 5_000;

/** `ended` gets the payload bytes relayed each way, once the session is over. */
export function relayMessages(
  client: WebSocket,
  switched: SwitchedUpstream,
  upgrades: OpenUpgrades,
  ended: (sent: number, received: number) => void,
): void {
  const upstream = new UpstreamWebSocket(switched.conn);
  const unregister = upgrades.add({
    close() {
      closeClient(client, 1001, "The gateway is shutting down");
      upstream.close(1001, "The gateway is shutting down");
      endSoon();
    },
  });
  let finished = false;
  let closeTimer: ReturnType<typeof setTimeout> | undefined;
  const endSoon = () => {
    if (!finished) closeTimer ??= setTimeout(() => switched.conn.close(), CLOSE_WAIT_MS);
  };
  client.binaryType = "arraybuffer";
  const opened = new Promise<void>((resolve) => {
    client.onopen = () => resolve();
    client.onclose = (e) => {
      resolve();
      // A client gone without a close frame (1006) is, to the upstream, one going away.
      upstream.close(e.code === 1005 || sendableCode(e.code) ? e.code : 1001, e.reason);
      endSoon();
    };
  });
  client.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    if (upstream.closeSent) return;
    if (upstream.backlog > MAX_UPSTREAM_BACKLOG_BYTES) {
      closeClient(client, 1013, "The upstream is not keeping up");
      upstream.close(1001, "The client outran the upstream");
      endSoon();
      return;
    }
    upstream.send(e.data);
  };

  (async () => {
    try {
      while (true) {
        const event = await upstream.next();
        if (event.kind === "close") {
          // Echoed as RFC 6455 §5.5.1 asks, unless the connection is gone.
          if (event.code !== 1006) upstream.close(event.code, "");
          await opened;
          closeClient(client, event.code, event.reason);
          return;
        }
        // Once the client is closing, what comes before the upstream's close is dropped.
        if (await clientTakes(client, opened)) client.send(event.data);
      }
    } catch (e) {
      const broken = e instanceof WebSocketProtocolError;
      if (broken) upstream.close(e.code, e.message);
      await opened;
      // Otherwise the connection failed (reset, or ended by endSoon): as one that just ended.
      closeClient(client, broken ? 1011 : 1006, "The upstream broke the WebSocket protocol");
    } finally {
      finished = true;
      clearTimeout(closeTimer);
      // A close frame still queued goes out before the connection ends.
      await settledWithin(upstream.flushed(), CLOSE_WAIT_MS);
      switched.release();
      unregister();
      ended(upstream.bytesSent, upstream.bytesReceived);
    }
  })();
}

/** Waits until the client is open and its queue is short; false once it is closing. */
async function clientTakes(client: WebSocket, opened: Promise<void>): Promise<boolean> {
  await opened;
  while (client.readyState === WebSocket.OPEN && client.bufferedAmount > CLIENT_HIGH_WATER_BYTES) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
  return client.readyState === WebSocket.OPEN;
}

/**
 * Closes the client's side with the upstream's code: 1005 (none given) as a
 * close without one, 1006 (the upstream's connection ended without a close)
 * as 1011.
 */
function closeClient(client: WebSocket, code: number, reason: string): void {
  if (client.readyState !== WebSocket.OPEN) return;
  try {
    if (code === 1005) client.close();
    else if (sendableCode(code)) client.close(code, reason);
    else client.close(1011, "The upstream closed the connection");
  } catch {
    client.close();
  }
}

async function settledWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise<void>((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}
