/**
 * Public listeners: plain HTTP, or TLS from PEM files (HTTP/2 and HTTP/1.1 by
 * ALPN), or mTLS (`client_ca`: see mtls_listener.ts). Each listener serves the
 * same handler; shutting one down stops accepting and waits for the requests
 * it is serving.
 */
import type { ListenerConfig } from "./schema.ts";
import type { ServeHandler } from "./handler.ts";
import { startMtlsListener } from "./mtls_listener.ts";

export interface RunningListener {
  readonly name: string;
  readonly hostname: string;
  /** The bound port (the real one when the config asked for port 0). */
  readonly port: number;
  readonly tls: boolean;
  /** Stops accepting and resolves when in-flight requests are done. */
  shutdown(): Promise<void>;
}

export interface ListenerOptions {
  resolvePath(p: string): string;
  /** Share the port with other processes or workers (SO_REUSEPORT). */
  reusePort?: boolean;
  onError?: (e: unknown) => void;
}

export async function startListener(
  cfg: ListenerConfig,
  handler: ServeHandler,
  o: ListenerOptions,
): Promise<RunningListener> {
  // Deno.serve can neither request client certificates nor refuse TLS 1.2.
  if (cfg.tls?.client_ca || cfg.tls?.min_version === "1.3") {
    return startMtlsListener(cfg, handler, o);
  }
  const tls = cfg.tls
    ? {
      cert: await Deno.readTextFile(o.resolvePath(cfg.tls.cert)),
      key: await Deno.readTextFile(o.resolvePath(cfg.tls.key)),
    }
    : null;
  let bound: Deno.NetAddr | null = null;
  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
    ...(o.reusePort ? { reusePort: true } : {}),
    ...(tls ?? {}),
    onListen(addr) {
      bound = addr as Deno.NetAddr;
    },
    onError(e) {
      o.onError?.(e);
      return new Response(
        JSON.stringify({ error: { code: "internal_error", message: "Internal error" } }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  }, handler);
  const addr = (bound ?? server.addr) as Deno.NetAddr;
  return {
    name: cfg.name,
    hostname: addr.hostname,
    port: addr.port,
    tls: tls !== null,
    shutdown: () => server.shutdown(),
  };
}
