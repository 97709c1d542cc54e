/**
 * The HTTP/1.1 server behind plain listeners. The gateway parses requests
 * itself instead of using `Deno.serve` for three things measured or missing
 * there: request bodies are read only as fast as the upstream takes them (a
 * 200 MB upload through `Deno.serve` grew the process by up to 155 MB), a
 * client that is slow to send its head gets 408 (Deno.serve has no hook
 * before the head is parsed), and malformed framing is refused in the
 * common JSON error shape by a parser whose rules the README states.
 *
 * Connections are served one request at a time (pipelined requests wait in
 * the buffer). A watched deadline per connection covers the keep-alive idle
 * time and the head read time; body reads are timed by the security stage.
 */
import { type ErrorCode, errorResponse } from "../../core/errors.ts";
import { responseFields } from "../../core/parsed_response.ts";
import { toByteString } from "../../proxy/http1/bytes.ts";
import { ChunkedDecoder } from "../../proxy/http1/body.ts";
import { deadlines, type Watched } from "../../proxy/http1/deadlines.ts";
import type { ServeHandler, ServeInfo } from "../handler.ts";
import { splitAbsolute, validAuthority } from "../incoming.ts";
import { connectionOptions } from "../../core/connection_options.ts";
import { ClientConnection } from "./client_connection.ts";
import { type RequestBody, requestBody } from "./request_body.ts";
import { fetchMethod, ParsedIncoming, unservedMethod } from "./parsed_request.ts";
import {
  type HeadRefusal,
  isRefusal,
  MAX_HEAD_BYTES,
  parseRequestHead,
  type RequestHead,
  seenHead,
} from "./request_head.ts";
import { writeResponse } from "./response_writer.ts";
import { LINGER_IDLE_MS, LINGER_MS } from "../lingering.ts";
import { closeQuietly } from "../../proxy/http1/socket_io.ts";
import { admitConnection, type ConnectionCap } from "../connection_cap.ts";
import { completeUpgrade, registerUpgrade } from "./upgrade.ts";
import { monoNow } from "../../core/clock.ts";

export interface ConnectionTimeouts {
  /** From the first byte of a request head to its end (408 after). */
  headerMs: number;
  /** A kept-alive connection waiting for its next request (closed after). */
  idleMs: number;
  /** A write of an answer the client does not take (closed after). */
  sendMs: number;
}

/** A request refused before it reached the handler (malformed, too large, too slow). */
export interface RefusedRequest {
  code: ErrorCode;
  message: string;
  remoteAddr: Deno.Addr;
  /** What was parsed of the head, when it was. */
  method: string | null;
  target: string | null;
  host: string | null;
  /** Monotonic time (ms) the head started to arrive, for the recorded latency. */
  startMono: number;
}

/** `ConnectionCap`: the connections it holds. */
export interface Http1ServerOptions extends ConnectionCap {
  hostname: string;
  port: number;
  reusePort?: boolean;
  /** PEM certificate chain and key: HTTP/1.1 over TLS (ALPN `http/1.1`). */
  tls?: { cert: string; key: string };
  /** Read for every connection, so a reload's new values apply to new requests. */
  timeouts(): ConnectionTimeouts;
  onError?(e: unknown): void;
  /**
   * The answer to a refused request. The gateway's records it (metrics, access
   * log) like any other refusal; without it the common JSON shape is sent unrecorded.
   */
  refused?(r: RefusedRequest): Response;
}

/** The CRLF CRLF that ends a head. */
const HEAD_END_BYTES = 4;
// Shared by every request they refuse (refused() copies them), so frozen.
const MALFORMED_TARGET: HeadRefusal = Object.freeze({
  code: "bad_request",
  message: "Malformed request target",
});
const BARE_LF: HeadRefusal = Object.freeze({
  code: "bad_request",
  message: "The request head has a line ending in a bare LF",
});
const INVALID_HOST: HeadRefusal = Object.freeze({
  code: "bad_request",
  message: "Invalid Host header",
});

export class Http1Server {
  readonly addr: Deno.NetAddr;
  private readonly listener: Deno.Listener;
  private readonly connections = new Set<ServedConnection>();
  private closing = false;
  /**
   * Whether a connection may have gone idle since `reclaimIdle` last found none:
   * a flood of connections at the cap while every held one is busy then costs
   * no search each, and the hot path pays one field write per request.
   */
  idleSeen = true;
  /** Settles when the last connection ends after `shutdown`; every caller waits on the same one. */
  private drain: PromiseWithResolvers<void> | null = null;
  /** What the URL of a request in origin form begins with. */
  readonly origin: "http://" | "https://";

  constructor(private readonly o: Http1ServerOptions, private readonly handler: ServeHandler) {
    this.origin = o.tls ? "https://" : "http://";
    const at = {
      hostname: o.hostname,
      port: o.port,
      transport: "tcp" as const,
      ...(o.reusePort ? { reusePort: true } : {}),
    };
    // A TLS connection is accepted before its handshake, which its first read runs: the
    // head deadline then covers a client that never starts one.
    this.listener = o.tls
      ? Deno.listenTls({ ...at, ...o.tls, alpnProtocols: ["http/1.1"] })
      : Deno.listen(at);
    this.addr = this.listener.addr as Deno.NetAddr;
    this.accept();
  }

  get isClosing(): boolean {
    return this.closing;
  }

  private async accept(): Promise<void> {
    while (true) {
      let socket: Deno.Conn;
      try {
        socket = await this.listener.accept();
      } catch (e) {
        if (this.closing) return;
        // Out of file descriptors and the like: keep accepting once the moment passes.
        this.o.onError?.(e);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (!admitConnection(this.o, this.connections.size, () => this.reclaimIdle())) {
        closeQuietly(socket);
        continue;
      }
      // The runtime offers no way to turn Nagle off on a TLS connection (README, Known limits).
      if ("setNoDelay" in socket) (socket as Deno.TcpConn).setNoDelay(true);
      const c = new ServedConnection(this, new ClientConnection(socket), this.handler);
      this.connections.add(c);
      this.idleSeen = true;
      c.serve(this.o.timeouts()).finally(() => {
        this.connections.delete(c);
        if (this.connections.size === 0) this.drain?.resolve();
      });
    }
  }

  /**
   * Closes the longest-held connection that waits for a request (its next, or
   * its first) or lingers after an answer, as nginx frees a keep-alive
   * connection for a new one; false if every connection is busy. Such a close
   * may cross a request the client is sending: clients retry a request sent on
   * an idle connection that closes without an answer, as after the idle timeout.
   */
  reclaimIdle(): boolean {
    if (!this.idleSeen) return false;
    for (const c of this.connections) {
      if (c.closeIfIdle()) return true;
    }
    this.idleSeen = false;
    return false;
  }

  reportError(e: unknown): void {
    this.o.onError?.(e);
  }

  refusal(r: RefusedRequest): Response {
    if (this.o.refused) {
      try {
        return this.o.refused(r);
      } catch (e) {
        this.reportError(e);
      }
    }
    return errorResponse(r.code, crypto.randomUUID(), { message: r.message });
  }

  /** Stops accepting, closes idle connections, and resolves when the busy ones are done. */
  shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      try {
        this.listener.close();
      } catch {
        // Already closed.
      }
    }
    for (const c of this.connections) c.closeIfIdle();
    if (this.connections.size === 0) return Promise.resolve();
    this.drain ??= Promise.withResolvers<void>();
    return this.drain.promise;
  }
}

const enum Phase {
  /** Waiting for the first byte of the next request. */
  Idle,
  /** Part of a request head has arrived. */
  Head,
  /** A request is being served. */
  Busy,
  /** Its answer is being written. */
  Answering,
  /** Answered and half-closed; what the client still sends is read and dropped. */
  Lingering,
}

/**
 * Checks the framing of a chunked body's first chunk if it came with the head,
 * so that a malformed body is refused before the upstream sees any of it.
 */
function firstChunkValid(conn: ClientConnection): boolean {
  const saved = conn.start;
  try {
    new ChunkedDecoder(conn).framing();
    return true;
  } catch {
    return false;
  } finally {
    conn.start = saved;
  }
}

class ServedConnection implements Watched {
  nextCheck = Infinity;
  wheelSlot = -1;
  private phase = Phase.Idle;
  private timeouts: ConnectionTimeouts = { headerMs: 0, idleMs: 0, sendMs: 0 };
  private timedOut = false;
  /** When the current head began to arrive (or the connection opened); -1 when it came whole. */
  private headStarted = 0;
  /** The last Host on this connection whose URLs parse (null: none sent, the listener's address). */
  private parsedHost: string | null = null;
  /** The last answer left bytes of its request unread: linger before closing. */
  private unreadRequest = false;
  /*
   * The request being served (one at a time): whether its body has all been
   * read, whether it is an upgrade, and its abort controller, made on first use
   * (watching the connection has a cost). Fields, not closures over a
   * request's locals: the handlers below are made once per connection.
   */
  private bodyComplete = true;
  private upgrading = false;
  private abort: AbortController | null = null;
  private readonly info: ServeInfo;

  constructor(
    private readonly server: Http1Server,
    private readonly conn: ClientConnection,
    private readonly handler: ServeHandler,
  ) {
    this.info = { remoteAddr: conn.socket.remoteAddr, signal: () => this.signal() };
  }

  private signal(): AbortSignal {
    if (this.abort === null) {
      this.abort = new AbortController();
      if (this.bodyComplete) this.watchClient();
    }
    return this.abort.signal;
  }

  private watchClient(): void {
    if (!this.upgrading) this.conn.watchForEnd(this.clientWentAway);
  }

  private readonly clientWentAway = (): void => {
    this.abort?.abort(new DOMException("The client went away", "AbortError"));
  };

  private readonly bodyRead = (): void => {
    this.bodyComplete = true;
    if (this.abort !== null) this.watchClient();
  };

  async serve(timeouts: ConnectionTimeouts): Promise<void> {
    this.timeouts = timeouts;
    // A new connection gets the head timeout, not the longer keep-alive one.
    this.headStarted = monoNow();
    this.nextCheck = this.headStarted + timeouts.headerMs;
    deadlines.add(this);
    try {
      while (await this.serveOne());
      if (this.unreadRequest) await this.linger();
    } catch (e) {
      if (!this.conn.closed) this.server.reportError(e);
    } finally {
      deadlines.delete(this);
      this.conn.close();
    }
  }

  check(now: number): void {
    this.nextCheck = Infinity;
    if (this.phase === Phase.Busy) return;
    if (this.phase === Phase.Answering) {
      // A client that takes no byte of its answer for this long has stopped reading (nginx's send_timeout).
      const since = this.conn.writeWaitingSince;
      if (now - since >= this.timeouts.sendMs) this.conn.close();
      else this.nextCheck = Math.min(since, now) + this.timeouts.sendMs;
      return;
    }
    if (this.phase === Phase.Idle || this.phase === Phase.Lingering) {
      this.conn.close();
      return;
    }
    this.timedOut = true;
    const refusal = this.server.refusal(this.refused(
      {
        code: "request_timeout",
        message: `The request head was not received within ${this.timeouts.headerMs} ms`,
      },
      null,
    ));
    writeResponse(this.conn, refusal, { head: false, http10: false, keepAlive: false })
      .catch(() => {})
      .finally(() => this.conn.close());
  }

  /** The answer is being written: its writes are watched from now on. */
  private answering(): void {
    this.phase = Phase.Answering;
    this.nextCheck = deadlines.coarseNow() + this.timeouts.sendMs;
  }

  /** Closes the connection if it waits for a request or lingers; whether it did. */
  closeIfIdle(): boolean {
    if (this.conn.closed || (this.phase !== Phase.Idle && this.phase !== Phase.Lingering)) {
      return false;
    }
    this.conn.close();
    return true;
  }

  /**
   * Closes a connection whose client may still be sending the request the
   * gateway answered without reading all of it (see lingering.ts): half-closes
   * (the answer ends with a FIN), then reads and drops what comes until the
   * client closes too. Not while the server shuts down: the drain does not
   * wait for it.
   */
  private async linger(): Promise<void> {
    const c = this.conn;
    if (c.closed || c.hijacked || this.server.isClosing) return;
    this.phase = Phase.Lingering;
    this.server.idleSeen = true;
    const end = deadlines.coarseNow() + LINGER_MS;
    try {
      await c.socket.closeWrite();
      do {
        this.nextCheck = Math.min(end, deadlines.coarseNow() + LINGER_IDLE_MS);
        c.start = c.end;
      } while (c.filled(await c.readMore()) > 0);
    } catch {
      // Reset by the client, or closed at the deadline.
    }
  }

  /** Serves one request; resolves to whether the connection stays open for another. */
  private async serveOne(): Promise<boolean> {
    const c = this.conn;
    let head = this.headInBuffer();
    while (head === undefined) {
      let n: number;
      try {
        n = c.filled(await c.readMore());
      } catch {
        return false;
      }
      if (n === 0 || this.timedOut) return false;
      head = this.headInBuffer();
    }
    this.phase = Phase.Busy;
    this.nextCheck = Infinity;
    if (isRefusal(head)) {
      this.unreadRequest = true;
      await this.refuse(head, null);
      return false;
    }

    const method = fetchMethod(head.method);
    const authority = this.authorityToServe(head, method);
    if (typeof authority !== "string") {
      this.unreadRequest = true;
      await this.refuse(authority, head);
      return false;
    }
    const hasBody = head.chunked || head.contentLength > 0;
    const bodyAllowed = method !== "GET" && method !== "HEAD";
    // The client's leaving is watched only once someone asks (a read pending per request costs).
    this.abort = null;
    this.bodyComplete = !hasBody;
    this.upgrading = head.upgrade;
    const body: RequestBody | null = hasBody
      ? requestBody(this.conn, head.contentLength, head.chunked, head.expectContinue, this.bodyRead)
      : null;
    const req = new ParsedIncoming(
      method,
      authority,
      head.target,
      head.headers,
      body !== null && bodyAllowed ? body.stream : null,
      head.http10,
      body,
      this.server.origin,
    );
    if (head.upgrade) registerUpgrade(req.request(), this.conn);

    let res: Response;
    try {
      res = await this.handler(req, this.info);
    } catch (e) {
      this.server.reportError(e);
      res = errorResponse("internal_error", crypto.randomUUID());
    }
    if (head.upgrade && completeUpgrade(req.request(), res)) return false;
    if (this.conn.closed) {
      // Ended unread, so that what waits for its end (the log line, the plan's release) runs.
      res.body?.cancel().catch(() => {});
      return false;
    }

    const bodyDone = body === null || body.complete || body.skipBuffered();
    const connection = responseFields(res).get("connection");
    const keepAlive = head.keepAlive && bodyDone && !this.server.isClosing &&
      (connection === null || !connectionOptions(connection).includes("close"));
    this.answering();
    try {
      const reusable = await writeResponse(this.conn, res, {
        head: method === "HEAD",
        http10: head.http10,
        keepAlive,
      });
      if (!reusable || this.server.isClosing) {
        // The client may still be sending: this request's body, or one it pipelined behind it.
        this.unreadRequest = !bodyDone || this.conn.buffered > 0;
        return false;
      }
    } catch {
      // The client went away mid-response.
      return false;
    }
    this.phase = Phase.Idle;
    this.server.idleSeen = true;
    this.conn.idle();
    this.nextCheck = deadlines.coarseNow() + this.timeouts.idleMs;
    return true;
  }

  /**
   * The next request head if all of it is buffered (taken out of the buffer),
   * or why it is refused; undefined when more must be read. Not async: the
   * caller awaits the socket itself, one async layer fewer per request.
   */
  private headInBuffer(): RequestHead | HeadRefusal | undefined {
    const c = this.conn;
    // Empty lines before a request line are allowed (RFC 9112 §2.2).
    while (c.end - c.start >= 2 && c.buf[c.start] === 13 && c.buf[c.start + 1] === 10) {
      c.consume(c.start + 2);
    }
    const idx = c.findHeadEnd();
    if (idx >= 0) {
      // A head that came whole in one read never needed its deadline (nor a clock read).
      if (this.phase === Phase.Idle) this.headStarted = -1;
      if (idx - c.start > MAX_HEAD_BYTES) return this.tooLarge();
      const text = toByteString(c.buf.subarray(c.start, idx));
      c.consume(idx + 4);
      const head = parseRequestHead(text);
      if (isRefusal(head)) head.seen = seenHead(text);
      return head;
    }
    // Such a head never ends by our rules (RFC 9112 §2.2 lets a server refuse it): say so now.
    if (c.headHasBareLf()) return BARE_LF;
    if (c.buffered > 0 && this.phase === Phase.Idle) {
      this.phase = Phase.Head;
      this.headStarted = monoNow();
      this.nextCheck = this.headStarted + this.timeouts.headerMs;
    }
    // A head of MAX_HEAD_BYTES is served: its blank line (4 bytes) may still be arriving.
    if (c.buffered >= MAX_HEAD_BYTES + HEAD_END_BYTES) return this.tooLarge();
    return undefined;
  }

  private tooLarge(): HeadRefusal {
    const c = this.conn;
    const lineEnd = c.buf.subarray(c.start, c.end).indexOf(10);
    return lineEnd < 0 || lineEnd > MAX_HEAD_BYTES
      ? { code: "uri_too_long", message: `The request line is longer than ${MAX_HEAD_BYTES} bytes` }
      : {
        code: "headers_too_large",
        message: `The request head is larger than ${MAX_HEAD_BYTES} bytes`,
      };
  }

  /**
   * The authority a request is at: an absolute-form target's own (RFC 9112
   * §3.2.2: the Host field is then ignored), else the Host field, else the
   * listener's address.
   */
  private authorityOf(head: RequestHead): string {
    if (head.target.charCodeAt(0) !== 47) return splitAbsolute(head.target).authority;
    if (head.host !== null) return head.host;
    const a = this.server.addr;
    return `${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}`;
  }

  /**
   * The authority a parsed head is served at, or why it cannot be: what a
   * Request would refuse (its URL), bad framing.
   */
  private authorityToServe(head: RequestHead, method: string): string | HeadRefusal {
    if (unservedMethod(method)) {
      return { code: "bad_request", message: `${method} requests are not served` };
    }
    const authority = this.authorityOf(head);
    const refusal = this.urlRefusal(authority, head);
    if (refusal !== null) return refusal;
    if (head.chunked && !firstChunkValid(this.conn)) {
      return { code: "bad_request", message: "Malformed chunked body" };
    }
    return authority;
  }

  /**
   * Why the URL parser would refuse the request's URL, as the Request
   * constructor would; null when it takes it. An origin-form target always
   * parses after a host that does, and a connection repeats its Host: that is
   * checked once.
   */
  private urlRefusal(authority: string, head: RequestHead): HeadRefusal | null {
    if (head.target.charCodeAt(0) !== 47) return this.absoluteFormRefusal(authority, head);
    if (head.host === this.parsedHost) return null;
    if (!validAuthority(authority)) return INVALID_HOST;
    if (!URL.canParse(`http://${authority}${head.target}`)) return MALFORMED_TARGET;
    this.parsedHost = head.host;
    return null;
  }

  /**
   * An absolute-form target's authority is held to Host's syntax (so userinfo,
   * an error in an http URI by RFC 9110 §4.2.4, is refused too), and the Host
   * field it overrides must still be well formed.
   */
  private absoluteFormRefusal(authority: string, head: RequestHead): HeadRefusal | null {
    const host = head.host;
    if (host !== null && host !== this.parsedHost && !validAuthority(host)) return INVALID_HOST;
    return validAuthority(authority) && URL.canParse(head.target) ? null : MALFORMED_TARGET;
  }

  private refused(r: HeadRefusal, head: RequestHead | null): RefusedRequest {
    return {
      ...r,
      remoteAddr: this.conn.socket.remoteAddr,
      method: head?.method ?? r.seen?.method ?? null,
      target: head?.target ?? r.seen?.target ?? null,
      host: head?.host ?? r.seen?.host ?? null,
      startMono: this.headStarted >= 0 ? this.headStarted : monoNow(),
    };
  }

  private async refuse(r: HeadRefusal, head: RequestHead | null): Promise<void> {
    const refused = this.refused(r, head);
    const res = this.server.refusal(refused);
    // An answer to HEAD has no content (RFC 9110 §9.3.2), a refusal's neither.
    const toHead = refused.method !== null && fetchMethod(refused.method) === "HEAD";
    this.answering();
    try {
      await writeResponse(this.conn, res, { head: toHead, http10: false, keepAlive: false });
    } catch {
      // The client is gone.
    }
  }
}
