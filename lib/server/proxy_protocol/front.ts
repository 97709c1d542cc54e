/**
 * A PROXY protocol front for a listener. `Deno.serve` owns its sockets and offers
 * no way to read bytes before HTTP parsing starts, nor to serve a connection
 * accepted elsewhere (`Deno.serveHttp` is gone in Deno 2). So the front accepts
 * on the public port, reads the PROXY header, and relays the rest of the stream
 * to the real server listening on a private loopback port. The server maps each
 * relayed connection back to its client by the relay's local port.
 */
import type { CidrSet } from "../../security/cidr.ts";
import { parseProxyHeader, type ProxySource } from "./parse.ts";
import { closeQuietly, copySocket, writeAllTo } from "../../proxy/http1/socket_io.ts";
import { LINGER_MS } from "../lingering.ts";
import { admitConnection, type ConnectionCap } from "../connection_cap.ts";

/** `ConnectionCap`: the client connections it relays (one each to the inner server). */
export interface ProxyProtocolOptions extends ConnectionCap {
  /** Peers allowed to send the header; read per connection, so a reload applies at once. */
  trusted(): CidrSet;
  /** How long a connection may take to send its header before it is closed. */
  headerTimeoutMs(): number;
  /** Called for every connection closed without being served. */
  onRefused(reason: string, peer: string): void;
}

export interface FrontOptions extends ProxyProtocolOptions {
  hostname: string;
  port: number;
  reusePort: boolean;
  /**
   * Closes one idle connection of the inner server (its relay then ends) to
   * make room at `maxConnections`; false if none is idle.
   */
  reclaimIdle?: () => boolean;
  /** Port of the server the front relays to, on 127.0.0.1. */
  innerPort: number;
}

/** What the relayed server is told about a connection: the client from the header. */
export interface ClientInfo {
  readonly remoteAddr: Deno.NetAddr;
  /**
   * The header named no client (LOCAL, UNKNOWN, a unix socket): the address is
   * the balancer's, but the bytes are the client's, so forwarded headers in
   * them are not the balancer's word.
   */
  readonly anonymous: boolean;
}

const RELAY_BUFFER = 16 * 1024;
const MAX_HEADER = 16 + 65535;
const INNER_HOST = "127.0.0.1";

export class ProxyProtocolFront {
  private readonly clients = new Map<number, ClientInfo>();
  private readonly open = new Set<Deno.Conn>();
  private closed = false;
  private readonly accepting: Promise<void>;
  /** Connections closed because of a missing or bad header, or an untrusted peer. */
  refused = 0;

  private constructor(
    private readonly listener: Deno.TcpListener,
    private readonly o: FrontOptions,
  ) {
    this.accepting = this.acceptLoop();
  }

  static listen(o: FrontOptions): ProxyProtocolFront {
    const listener = Deno.listen({
      hostname: o.hostname,
      port: o.port,
      ...(o.reusePort ? { reusePort: true } : {}),
    });
    return new ProxyProtocolFront(listener, o);
  }

  get addr(): Deno.NetAddr {
    return this.listener.addr;
  }

  /** The client behind a connection to the inner server, or undefined if it did not come through the front. */
  clientOf(addr: Deno.Addr): ClientInfo | undefined {
    if (addr.transport !== "tcp" || addr.hostname !== INNER_HOST) return undefined;
    return this.clients.get(addr.port);
  }

  /** Stops accepting and drops connections still sending their header. */
  async stopAccepting(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listener.close();
    await this.accepting;
  }

  /** Closes every relayed connection (after the inner server has drained). */
  closeAll(): void {
    for (const c of this.open) closeQuietly(c);
    this.open.clear();
  }

  private async acceptLoop(): Promise<void> {
    while (!this.closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch (e) {
        if (this.closed || e instanceof Deno.errors.BadResource) return;
        // Out of descriptors and the like: back off instead of spinning.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      void this.serve(conn);
    }
  }

  private async serve(conn: Deno.TcpConn): Promise<void> {
    const peer = conn.remoteAddr as Deno.NetAddr;
    if (!this.o.trusted().containsText(peer.hostname)) {
      this.refuse(conn, "peer is not in security.trusted_proxies", peer.hostname);
      return;
    }
    if (!admitConnection(this.o, this.open.size, () => this.o.reclaimIdle?.() ?? false)) {
      closeQuietly(conn);
      return;
    }
    this.open.add(conn);
    let inner: Deno.TcpConn | null = null;
    try {
      const head = await this.readHeader(conn);
      if (typeof head === "string") {
        this.refuse(conn, head, peer.hostname);
        return;
      }
      inner = await Deno.connect({ hostname: INNER_HOST, port: this.o.innerPort });
      const port = inner.localAddr.port;
      const source: ProxySource = head.source ?? peer;
      this.clients.set(port, {
        remoteAddr: { transport: "tcp", hostname: source.hostname, port: source.port },
        anonymous: head.source === null,
      });
      try {
        conn.setNoDelay(true);
        inner.setNoDelay(true);
        if (head.rest.length > 0) await writeAllTo(inner, head.rest);
        await relay(conn, inner);
      } finally {
        this.clients.delete(port);
      }
    } catch {
      // A reset or a closed inner server: the connection simply ends.
    } finally {
      this.open.delete(conn);
      closeQuietly(conn);
      if (inner) closeQuietly(inner);
    }
  }

  private refuse(conn: Deno.Conn, reason: string, peer: string): void {
    this.refused++;
    this.open.delete(conn);
    closeQuietly(conn);
    this.o.onRefused(reason, peer);
  }

  /** Reads until a whole header is in; returns why not as a string. */
  private async readHeader(
    conn: Deno.Conn,
  ): Promise<{ source: ProxySource | null; rest: Uint8Array } | string> {
    const timeoutMs = this.o.headerTimeoutMs();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, timeoutMs);
    try {
      // Read into spare room, doubled when full: copied into a new array of the exact size on
      // every read, a header trickled a byte per read cost n^2/2 copies (0.9 s for 64 KiB).
      let buf = new Uint8Array(4096);
      let len = 0;
      while (len < MAX_HEADER) {
        if (len === buf.length) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_HEADER));
          bigger.set(buf);
          buf = bigger;
        }
        let n: number | null;
        try {
          n = await conn.read(buf.subarray(len));
        } catch {
          return timedOut
            ? `no PROXY header within ${timeoutMs} ms`
            : "connection failed before the PROXY header";
        }
        if (n === null) return "connection closed before the PROXY header";
        len += n;
        const h = parseProxyHeader(buf.subarray(0, len));
        if (h.kind === "invalid") return h.reason;
        if (h.kind === "ok") return { source: h.source, rest: buf.subarray(h.length, len) };
      }
      return "PROXY header too long";
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Copies both ways, and passes a half-close on either way. The client may
 * half-close after its request; the server half-closes after an answer given
 * before the request's body was read, then reads and drops what the client
 * still sends (lingering.ts), so the client must be able to go on sending.
 * Once both ways have ended (or one failed, or LINGER_MS passed after the
 * server's end), both sockets close.
 */
async function relay(client: Deno.Conn, server: Deno.Conn): Promise<void> {
  const upstream = copySocket(client, server, RELAY_BUFFER).then((clean) => {
    if (clean) return server.closeWrite().catch(() => closeQuietly(server));
    closeQuietly(server);
  });
  if (await copySocket(server, client, RELAY_BUFFER)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await client.closeWrite();
      await Promise.race([upstream, new Promise((r) => timer = setTimeout(r, LINGER_MS))]);
    } catch {
      // The client is gone.
    } finally {
      clearTimeout(timer);
    }
  }
  closeQuietly(client);
  closeQuietly(server);
  await upstream;
}
