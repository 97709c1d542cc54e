/**
 * A TLS listener that asks clients for certificates (mTLS). `Deno.serve` can
 * neither request nor read a client certificate, so this listener is served by
 * `node:https`, whose TLS layer verifies the certificate against `client_ca`.
 * Each request is bridged to the same fetch-style handler as every other
 * listener, with the verified certificate (or why it is not trusted) beside it.
 *
 * The handshake completes even without a trusted certificate, so that the
 * refusal is an HTTP 401 in the common error shape naming the reason (as nginx
 * does), not an opaque TLS alert. The verdict is the gateway's own chain check
 * (client_cert_verifier.ts says why) and is taken once per connection.
 * HTTP/1.1 only: no HTTP/2 on mTLS listeners.
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from "node:tls";
import { type Duplex, Readable } from "node:stream";
import type { ClientCertificate } from "../core/context.ts";
import { type ErrorCode, errorResponse } from "../core/errors.ts";
import { MAX_HEAD_BYTES } from "./http1/request_head.ts";
import type { ConnectionTimeouts, RefusedRequest } from "./http1/server.ts";
import type { ListenerConfig } from "./schema.ts";
import type { ServeHandler, ServeInfo } from "./handler.ts";
import { incomingOf, splitAbsolute, validAuthority } from "./incoming.ts";
import type { ListenerOptions, RunningListener } from "./listeners.ts";
import { ClientCertVerifier } from "./client_cert_verifier.ts";
import { subjectAltNamesOf } from "./cert_names.ts";
import { readTlsFiles } from "./tls_files.ts";
import { lingerOnNodeClose } from "./lingering.ts";
import { admitConnection } from "./connection_cap.ts";
import { byteSocketOf, writeAndClose } from "./node_socket.ts";
import { completeUpgrade, registerSocketTaker } from "./http1/upgrade.ts";
import { monoNow } from "../core/clock.ts";

/**
 * What the TLS layer said about a connection's client certificate: read once
 * per connection, and again once a certificate of its chain has expired (a
 * keep-alive connection can outlive it).
 */
interface PeerVerdict {
  cert: ClientCertificate | null;
  error: string | null;
  /** The verdict holds until this instant (ms): the chain's earliest expiry. */
  until: number;
}

const NO_CERTIFICATE: PeerVerdict = { cert: null, error: null, until: Infinity };

export async function startMtlsListener(
  cfg: ListenerConfig,
  handler: ServeHandler,
  o: ListenerOptions,
  timeouts: () => ConnectionTimeouts,
): Promise<RunningListener> {
  const tls = cfg.tls!;
  const [{ cert, key }, ca] = await Promise.all([
    readTlsFiles(tls, o.resolvePath, o.onExpiredCert),
    tls.client_ca ? Deno.readTextFile(o.resolvePath(tls.client_ca)) : Promise.resolve(null),
  ]);
  // Without client_ca this listener exists only for a TLS 1.3 floor: no client certificates.
  const verifier = ca === null ? null : new ClientCertVerifier(ca);
  const verdicts = new WeakMap<TLSSocket, PeerVerdict>();
  /** Sockets node handed over for an upgrade: out of its HTTP server's hands. */
  const upgraded = new Set<Duplex>();
  /** Per connection, when the response to its latest request is over. */
  const turns = new WeakMap<TLSSocket, Promise<void>>();
  /** Per connection, requests received whose response is not over. */
  const unanswered = new WeakMap<TLSSocket, number>();
  /**
   * Connections past their handshake with no request in hand, longest idle
   * first: what `reclaimIdle` may close. One still in its handshake is not in
   * node's hands yet as a TLS socket (README, Known limits).
   */
  const idle = new Set<TLSSocket>();
  let active = 0;
  let closing = false;
  let drained: (() => void) | null = null;

  const server = https.createServer({
    cert,
    key,
    ...(ca === null ? {} : { ca }),
    requestCert: ca !== null,
    rejectUnauthorized: false,
    minVersion: tls.min_version === "1.3" ? "TLSv1.3" : "TLSv1.2",
    // The same bounds on a request head as plain listeners (node's default is 16 KiB)...
    maxHeaderSize: MAX_HEAD_BYTES,
    ...nodeTimeouts(timeouts()),
    // ...and on its time, checked every second (node's default is every 30 s).
    connectionsCheckingInterval: 1_000,
    // A body's pace is the body timeout's business (a policy); node's whole-request
    // limit (300 s) would cut a long upload that keeps going.
    requestTimeout: 0,
    ALPNProtocols: ["http/1.1"],
  }, (req: IncomingMessage, res: ServerResponse) => {
    // Node hands on a pipelined request at once. They are served in turn instead,
    // and none after an answer that closes the connection (RFC 9112 §9.3.2, §9.6):
    // its response would never be written, nor its in-flight count released.
    const socket = req.socket as TLSSocket;
    idle.delete(socket);
    unanswered.set(socket, (unanswered.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const left = unanswered.get(socket)! - 1;
      unanswered.set(socket, left);
      if (left === 0 && !socket.destroyed && !upgraded.has(socket)) idle.add(socket);
    });
    const previous = turns.get(socket);
    turns.set(
      socket,
      previous === undefined ? serve(req, res) : previous.then(() => serve(req, res)),
    );
  });

  /** Serves one request; resolves when its response is over. */
  function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    if (socket.writableEnded || socket.destroyed) {
      req.resume();
      return Promise.resolve();
    }
    active++;
    const over = new Promise<void>((resolve) =>
      res.on("close", () => {
        if (--active === 0 && closing) {
          server.closeIdleConnections();
          drained?.();
        }
        resolve();
      })
    );
    bridge(req, res, handler, verdictOf(socket), o.onError, timeouts().sendMs);
    return over;
  }

  /** What the TLS layer said of the connection's client certificate (see PeerVerdict). */
  function verdictOf(socket: TLSSocket): PeerVerdict {
    const now = o.clock?.now() ?? Date.now();
    let verdict = verdicts.get(socket);
    if (!verdict || now > verdict.until) {
      verdict = verifier ? peerVerdict(socket, verifier, now) : NO_CERTIFICATE;
      verdicts.set(socket, verdict);
    }
    return verdict;
  }

  // A WebSocket upgrade: node hands over the raw socket, which the proxy joins to the upstream's.
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Uint8Array) => {
    upgraded.add(socket);
    idle.delete(socket as TLSSocket);
    socket.once("close", () => upgraded.delete(socket));
    bridgeUpgrade(req, socket, head, handler, verdictOf(socket as TLSSocket), o.onError);
  });
  // Raw connections, counted for `max_connections` until they close (an upgraded one too).
  let connections = 0;
  server.on("connection", (socket: Duplex) => {
    if (!admitConnection(o, connections, reclaimIdle)) {
      socket.destroy();
      return;
    }
    connections++;
    socket.once("close", () => connections--);
    // Read for every connection, as plain listeners do, so that a reload's values apply.
    Object.assign(server, nodeTimeouts(timeouts()));
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    idle.add(socket);
    socket.once("close", () => idle.delete(socket));
  });

  /** Closes the longest idle connection; false if none is. See Http1Server.reclaimIdle. */
  function reclaimIdle(): boolean {
    for (const socket of idle) {
      idle.delete(socket);
      if (!socket.destroyed) {
        socket.destroy();
        return true;
      }
    }
    return false;
  }

  // Handshake failures are the client's problem (wrong protocol, aborted): not listener errors.
  server.on("tlsClientError", () => {});
  // A head node's parser refuses: answered in the common error shape, and recorded, as
  // plain listeners answer theirs (node's own answer is a bare status line).
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    const refusal = headRefusal(err);
    if (refusal === null || socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    const r: RefusedRequest = {
      ...refusal,
      remoteAddr: remoteAddrOf(socket as TLSSocket),
      method: null,
      target: null,
      host: null,
      startMono: monoNow(),
    };
    void writeAndClose(
      socket,
      o.refused ? o.refused(r) : errorResponse(r.code, crypto.randomUUID(), { message: r.message }),
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: cfg.host, port: cfg.port, reusePort: o.reusePort ?? false }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as { address: string; port: number };
  return {
    name: cfg.name,
    hostname: addr.address,
    port: addr.port,
    tls: true,
    reclaimIdle,
    async shutdown() {
      closing = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      if (active > 0) await new Promise<void>((r) => (drained = r));
      server.closeAllConnections();
      // Relays of upgraded connections (WebSockets) go on until either side closes, as on
      // plain listeners: the listener's close does not wait for them.
      if (upgraded.size === 0) await closed;
    },
  };
}

/** The head timeout and the keep-alive idle timeout, in node's terms. */
function nodeTimeouts(t: ConnectionTimeouts): { headersTimeout: number; keepAliveTimeout: number } {
  return { headersTimeout: t.headerMs, keepAliveTimeout: t.idleMs };
}

/** What a parse error of node's means to the client; null when there is no one to tell. */
function headRefusal(err: NodeJS.ErrnoException): { code: ErrorCode; message: string } | null {
  switch (err.code) {
    case "ECONNRESET":
    case "EPIPE":
      return null;
    case "HPE_HEADER_OVERFLOW":
      return {
        code: "headers_too_large",
        message: `The request head is larger than ${MAX_HEAD_BYTES} bytes`,
      };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { code: "request_timeout", message: "The request was not received in time" };
    default:
      return {
        code: "bad_request",
        message: `The request is malformed (${err.code ?? "parse error"})`,
      };
  }
}

function peerVerdict(socket: TLSSocket, verifier: ClientCertVerifier, now: number): PeerVerdict {
  const pc = socket.getPeerCertificate(true) as DetailedPeerCertificate;
  if (!pc || !pc.raw) return NO_CERTIFICATE;
  const presented: Uint8Array[] = [];
  for (
    let c = pc.issuerCertificate;
    c && c !== c.issuerCertificate && c.raw;
    c = c.issuerCertificate
  ) {
    presented.push(c.raw);
    if (presented.length > 8) break;
  }
  // The chain the TLS layer built, its root (self-issued, where the loop stopped) included.
  let until = Date.parse(pc.valid_to);
  for (let i = 0, d = pc.issuerCertificate; d && i < 10; i++) {
    until = Math.min(until, Date.parse(d.valid_to));
    if (d === d.issuerCertificate) break;
    d = d.issuerCertificate;
  }
  const ours = verifier.verify(pc.raw, presented, now);
  if (ours !== null) return { cert: null, error: ours, until: Infinity };
  // Defence in depth: a full handshake must also have satisfied the TLS layer.
  if (!socket.isSessionReused() && !socket.authorized) {
    return {
      cert: null,
      error: String(socket.authorizationError ?? "CERT_UNTRUSTED"),
      until: Infinity,
    };
  }
  // An unreadable date would make the verdict never expire: then it is read per request.
  return { cert: describeCertificate(pc), error: null, until: Number.isNaN(until) ? now : until };
}

export function describeCertificate(pc: PeerCertificate): ClientCertificate {
  const cn = pc.subject?.CN as string | string[] | undefined;
  return {
    // Several CNs name no one: a CA may have checked another than the one read (Go reads the last).
    subjectCN: (Array.isArray(cn) ? (cn.length === 1 ? cn[0] : undefined) : cn) ?? null,
    sans: subjectAltNamesOf(pc.raw),
    fingerprint256: pc.fingerprint256,
    validTo: pc.valid_to,
  };
}

function bridge(
  req: IncomingMessage,
  res: ServerResponse,
  handler: ServeHandler,
  verdict: PeerVerdict,
  onError: ((e: unknown) => void) | undefined,
  sendMs: number,
): void {
  const ac = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) ac.abort();
  });
  let request: Request;
  try {
    request = toRequest(req, ac.signal);
  } catch {
    void write(res, errorResponse("bad_request", crypto.randomUUID()));
    return;
  }
  const socket = req.socket;
  handler(incomingOf(request, false, req.httpVersion === "1.0"), infoOf(req, verdict))
    .then((response) => {
      // Answered before the body was all in: the client may still be sending it.
      if (!req.complete) lingerOnNodeClose(socket);
      return write(res, response, sendMs);
    })
    .catch((e) => {
      onError?.(e);
      if (!res.headersSent) return write(res, errorResponse("internal_error", crypto.randomUUID()));
      res.destroy();
    });
}

function bridgeUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Uint8Array,
  handler: ServeHandler,
  verdict: PeerVerdict,
  onError: ((e: unknown) => void) | undefined,
): void {
  let request: Request;
  try {
    // Node leaves what follows the head on the socket, for the upgraded protocol: a body
    // would never reach the request.
    if (Number(req.headers["content-length"] ?? 0) !== 0 || req.headers["transfer-encoding"]) {
      throw new Error("An upgrade request with a body");
    }
    request = toRequest(req, new AbortController().signal);
  } catch {
    void writeAndClose(socket, errorResponse("bad_request", crypto.randomUUID()));
    return;
  }
  // Node flags an HTTP/1.0 upgrade too, which a server must ignore (RFC 9110 §7.8).
  if (req.httpVersion !== "1.0") {
    registerSocketTaker(
      request,
      () => socket.destroyed ? null : { socket: byteSocketOf(socket), buffered: head },
    );
  }
  handler(incomingOf(request, false, req.httpVersion === "1.0"), infoOf(req, verdict))
    .then((response) => {
      // Switched: the tunnel owns the socket and answers on it.
      if (!completeUpgrade(request, response)) return writeAndClose(socket, response);
    })
    .catch((e) => {
      onError?.(e);
      socket.destroy();
    });
}

function infoOf(req: IncomingMessage, verdict: PeerVerdict): ServeInfo {
  return {
    remoteAddr: remoteAddrOf(req.socket),
    clientCert: verdict.cert,
    clientCertError: verdict.error,
  };
}

function remoteAddrOf(socket: IncomingMessage["socket"]): Deno.NetAddr {
  return {
    transport: "tcp",
    hostname: unmapV4(socket.remoteAddress ?? "127.0.0.1"),
    port: socket.remotePort ?? 0,
  };
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const target = req.url ?? "/";
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  let host = headers.get("host") ?? "localhost";
  let path = target;
  if (!target.startsWith("/")) {
    // Absolute form: the target's authority is the request's (RFC 9112 §3.2.2), as written,
    // so that the host agreement check sees what a URL parser would have rewritten.
    if (!/^https?:\/\//i.test(target)) throw new Error("Malformed request target");
    const absolute = splitAbsolute(target);
    if (!validAuthority(absolute.authority)) throw new Error("Malformed request target");
    host = absolute.authority;
    path = absolute.target;
  }
  const hasBody = headers.has("content-length") || headers.has("transfer-encoding");
  const body = hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : null;
  return new Request(`https://${host}${path}`, {
    method: req.method ?? "GET",
    headers,
    body,
    signal,
    ...(body ? { duplex: "half" } : {}),
  } as RequestInit);
}

async function write(res: ServerResponse, response: Response, sendMs = 0): Promise<void> {
  const head: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") ((head[name] ??= []) as string[]).push(value);
    else head[name] = value;
  }
  res.writeHead(response.status, response.statusText || undefined, head);
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value) && !await drained(res, sendMs)) res.destroy();
      if (res.destroyed) {
        await reader.cancel().catch(() => {});
        return;
      }
    }
    res.end();
  } catch {
    res.destroy();
    await reader.cancel().catch(() => {});
  }
}

/**
 * Waits for `res` to drain (or close); false when the client took none of what
 * waits for it in `sendMs` (send_timeout_ms, 0 for no bound): it has stopped
 * reading. A client that takes some, however slowly, is waited for on.
 */
function drained(res: ServerResponse, sendMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let waiting = res.writableLength;
    const check = () => {
      const left = res.writableLength;
      if (left >= waiting) return settle(false);
      waiting = left;
      timer = setTimeout(check, sendMs);
    };
    let timer = sendMs > 0 ? setTimeout(check, sendMs) : undefined;
    const done = () => settle(true);
    const settle = (ok: boolean) => {
      clearTimeout(timer);
      res.off("drain", done);
      res.off("close", done);
      resolve(ok);
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/** `::ffff:10.0.0.1` -> `10.0.0.1`: node reports IPv4 peers of a dual-stack socket mapped. */
function unmapV4(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}
