/**
 * Public listeners: plain HTTP and TLS from PEM files (the gateway's own
 * HTTP/1.1 server, http1/), TLS with `http2: true` (`Deno.serve`: HTTP/2 and
 * HTTP/1.1 by ALPN), or mTLS and TLS 1.3-only (`node:https`: see
 * mtls_listener.ts). Each listener serves the same handler; shutting one down
 * stops accepting and waits for the requests it is serving.
 */
import { createHash } from "node:crypto";
import type { ListenerConfig } from "./schema.ts";
import type { ServeHandler } from "./handler.ts";
import { incomingOf } from "./incoming.ts";
import { dropUnreadBody } from "./lingering.ts";
import { startMtlsListener } from "./mtls_listener.ts";
import { ClientCertVerifier } from "./client_cert_verifier.ts";
import { readTlsFiles } from "./tls_files.ts";
import { type ConnectionTimeouts, Http1Server, type RefusedRequest } from "./http1/server.ts";
import { tracedHandler } from "../observe/otel.ts";
import { forRuntime } from "../core/parsed_response.ts";
import type { Clock } from "../core/clock.ts";
import { type ConnectionCap, connectionCapOf } from "./connection_cap.ts";
import {
  type ProxyProtocolOptions,
  startProxyProtocolListener,
} from "./proxy_protocol/listener.ts";

export interface RunningListener {
  readonly name: string;
  readonly hostname: string;
  /** The bound port (the real one when the config asked for port 0). */
  readonly port: number;
  readonly tls: boolean;
  /** Stops accepting and resolves when in-flight requests are done. */
  shutdown(): Promise<void>;
  /** Closes one idle client connection to make room for a new one; false if none is idle. */
  reclaimIdle(): boolean;
}

/** `ConnectionCap`: `max_connections`, applied by whichever server counts the client connections. */
export interface ListenerOptions extends ConnectionCap {
  resolvePath(p: string): string;
  /** Share the port with other processes or workers (SO_REUSEPORT). */
  reusePort?: boolean;
  onError?: (e: unknown) => void;
  /** Required when the listener has `proxy_protocol: true`. */
  proxyProtocol?: ProxyProtocolOptions;
  /** Head and keep-alive timeouts of plain and `node:https` listeners, read per connection. */
  timeouts?: () => ConnectionTimeouts;
  /** Answers (and records) requests a plain listener refuses before the handler. */
  refused?: (r: RefusedRequest) => Response;
  /** The time client certificates are checked against (the gateway's clock; default the system's). */
  clock?: Clock;
  /**
   * Told of an expired certificate, which is then served. Without it such a
   * certificate is refused: a reload that would swap a serving listener's
   * valid certificate for a stale renewal keeps the valid one; a listener
   * opening with nothing to keep (start) serves it, the error logged, since
   * clients that do not check expiry still work and health checks still answer.
   */
  onExpiredCert?: (message: string) => void;
}

/**
 * What a listener is: its settings and the contents of its TLS files, so
 * that a reload after a certificate was renewed in place reopens it.
 */
export async function listenerIdentity(
  cfg: ListenerConfig,
  resolvePath: (p: string) => string,
): Promise<string> {
  const files = cfg.tls
    ? await Promise.all(
      [cfg.tls.cert, cfg.tls.key, cfg.tls.client_ca].map((f) =>
        f === undefined ? "" : Deno.readTextFile(resolvePath(f)).catch(() => `unreadable:${f}`)
      ),
    )
    : [];
  const digest = files.length === 0
    ? ""
    : createHash("sha256").update(files.join("\0")).digest("hex");
  return JSON.stringify([cfg.host, cfg.port, cfg.tls ?? null, cfg.proxy_protocol, digest]);
}

/**
 * Checks, without touching the listener's port, what would make it fail to
 * open: its address is not this machine's, its TLS files do not load. Run
 * before a reload lets go of a port the listener keeps.
 */
export async function preflightListener(
  cfg: ListenerConfig,
  resolvePath: (p: string) => string,
): Promise<void> {
  const at = { hostname: cfg.host, port: 0, transport: "tcp" as const };
  if (!cfg.tls) {
    Deno.listen(at).close();
    return;
  }
  const { cert, key } = await readTlsFiles(cfg.tls, resolvePath);
  Deno.listenTls({ ...at, cert, key }).close();
  if (cfg.tls.client_ca) {
    new ClientCertVerifier(await Deno.readTextFile(resolvePath(cfg.tls.client_ca)));
  }
}

/** For listeners started without a plan (the admin listener). */
export const DEFAULT_TIMEOUTS: ConnectionTimeouts = {
  headerMs: 30_000,
  idleMs: 75_000,
  sendMs: 60_000,
};

export async function startListener(
  cfg: ListenerConfig,
  handler: ServeHandler,
  o: ListenerOptions,
): Promise<RunningListener> {
  if (cfg.proxy_protocol) {
    if (!o.proxyProtocol) throw new Error(`listener ${cfg.name}: PROXY protocol options missing`);
    const inner = { ...cfg, host: "127.0.0.1", port: 0, proxy_protocol: false };
    // The front counts the client connections; each is one connection to the inner server.
    const {
      reusePort: _,
      maxConnections: _max,
      onOverflow: _over,
      onReclaim: _reclaim,
      ...innerOptions
    } = o;
    return startProxyProtocolListener(
      cfg,
      handler,
      { ...o.proxyProtocol, ...connectionCapOf(o) },
      o.reusePort ?? false,
      (h, clientAddr) =>
        startListener(inner, h, {
          ...innerOptions,
          ...(o.refused
            ? { refused: (r) => o.refused!({ ...r, remoteAddr: clientAddr(r.remoteAddr) }) }
            : {}),
        }),
    );
  }
  // Deno.serve can neither request client certificates nor refuse TLS 1.2.
  if (cfg.tls?.client_ca || cfg.tls?.min_version === "1.3") {
    return startMtlsListener(cfg, handler, o, o.timeouts ?? (() => DEFAULT_TIMEOUTS));
  }
  const tls = cfg.tls ? await readTlsFiles(cfg.tls, o.resolvePath, o.onExpiredCert) : null;
  if (tls === null || !cfg.tls?.http2) {
    const server = new Http1Server({
      hostname: cfg.host,
      port: cfg.port,
      reusePort: o.reusePort ?? false,
      ...(tls ? { tls } : {}),
      timeouts: o.timeouts ?? (() => DEFAULT_TIMEOUTS),
      ...(o.onError ? { onError: o.onError } : {}),
      ...(o.refused ? { refused: o.refused } : {}),
      ...connectionCapOf(o),
    }, tracedHandler(handler));
    return {
      name: cfg.name,
      hostname: server.addr.hostname,
      port: server.addr.port,
      tls: tls !== null,
      shutdown: () => server.shutdown(),
      reclaimIdle: () => server.reclaimIdle(),
    };
  }
  let bound: Deno.NetAddr | null = null;
  const server = Deno.serve({
    hostname: cfg.host,
    port: cfg.port,
    ...(o.reusePort ? { reusePort: true } : {}),
    ...tls,
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
  }, (req, info) =>
    // The URL's authority is the client's: HTTP/2's `:authority` (no Host is listed for it) or Host.
    handler(incomingOf(req, true, false, true), info).then((res) => {
      // An upgraded request (a WebSocket) has no body left, and reading it would throw.
      if (res.status !== 101) dropUnreadBody(req.body);
      return forRuntime(res);
    }));
  const addr = (bound ?? server.addr) as Deno.NetAddr;
  return {
    name: cfg.name,
    hostname: addr.hostname,
    port: addr.port,
    tls: true,
    shutdown: () => server.shutdown(),
    // The runtime holds these connections (max_connections is refused with http2).
    reclaimIdle: () => false,
  };
}
