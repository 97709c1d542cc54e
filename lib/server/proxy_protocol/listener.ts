/** A listener that expects the PROXY protocol: the front on the public port, the server behind it. */
import { errorResponse } from "../../core/errors.ts";
import type { ServeHandler } from "../handler.ts";
import type { RunningListener } from "../listeners.ts";
import type { ListenerConfig } from "../schema.ts";
import { type ClientInfo, ProxyProtocolFront, type ProxyProtocolOptions } from "./front.ts";

export type { ProxyProtocolOptions };

/** Default for `proxy_protocol_timeout_ms`: balancers send the header at once. */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;

/**
 * Starts the real server (through `startInner`, on a private loopback port) and
 * the front that feeds it. Requests that reach the inner port directly, without
 * passing the front, are refused.
 */
export async function startProxyProtocolListener(
  cfg: ListenerConfig,
  handler: ServeHandler,
  pp: ProxyProtocolOptions,
  reusePort: boolean,
  /** `clientAddr` maps an inner connection's peer to the client the front relayed. */
  startInner: (
    handler: ServeHandler,
    clientAddr: (peer: Deno.Addr) => Deno.Addr,
  ) => Promise<RunningListener>,
): Promise<RunningListener> {
  let front: ProxyProtocolFront | null = null;
  const inner = await startInner((req, info) => {
    const client: ClientInfo | undefined = front?.clientOf(info.remoteAddr);
    if (client === undefined) {
      return Promise.resolve(errorResponse("forbidden", crypto.randomUUID(), {
        message: "This port only serves connections relayed by the PROXY protocol listener",
      }));
    }
    return handler(req, {
      ...info,
      remoteAddr: client.remoteAddr,
      ...(client.anonymous ? { forwardedUntrusted: true } : {}),
    });
  }, (peer) => front?.clientOf(peer)?.remoteAddr ?? peer);
  try {
    front = ProxyProtocolFront.listen({
      ...pp,
      hostname: cfg.host,
      port: cfg.port,
      reusePort,
      innerPort: inner.port,
      reclaimIdle: () => inner.reclaimIdle(),
    });
  } catch (e) {
    await inner.shutdown();
    throw e;
  }
  const f = front;
  return {
    name: cfg.name,
    hostname: f.addr.hostname,
    port: f.addr.port,
    tls: inner.tls,
    async shutdown() {
      await f.stopAccepting();
      await inner.shutdown();
      f.closeAll();
    },
    reclaimIdle: () => inner.reclaimIdle(),
  };
}
