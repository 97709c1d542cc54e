/**
 * Keep-alive connections to one upstream target. Idle connections are reused
 * last-in first-out (the warmest first) and closed after an idle timeout.
 */
import { type Socket, UpstreamConnection } from "./connection.ts";
import { UpstreamError } from "./errors.ts";
import { deadlines } from "./deadlines.ts";
import { closeQuietly } from "./socket_io.ts";

export interface Target {
  /** `http://10.0.1.22:3001` as configured. */
  readonly url: string;
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** Value for the Host header: host[:port], the port only when not the default. */
  readonly authority: string;
}

export function parseTarget(url: string): Target {
  const u = new URL(url);
  const tls = u.protocol === "https:";
  const port = u.port ? Number(u.port) : tls ? 443 : 80;
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return { url: u.origin, hostname, port, tls, authority: u.host };
}

export interface PoolOptions {
  maxIdle: number;
  idleTimeoutMs: number;
  /** PEM CA certificates trusted for https targets, besides the system store. */
  caCerts?: string[];
}

export class TargetPool {
  private readonly idle: UpstreamConnection[] = [];
  /** Connections lent out right now (for least_conn balancing and metrics). */
  active = 0;
  private closedPool = false;
  /** Told of every failed connect (to log why a target cannot be reached). */
  onConnectError: ((e: UpstreamError) => void) | null = null;

  constructor(readonly target: Target, private options: PoolOptions) {}

  configure(options: PoolOptions): void {
    this.options = options;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /**
   * A parked connection that is still open and not idle past the timeout, lent
   * out; null when there is none. `now` is a monotonic time (performance.now).
   */
  takeIdle(now: number): UpstreamConnection | null {
    // The sweep runs every few seconds: an expired connection must not wait for it,
    // the upstream may be closing it right now. Parked in time order, so once the
    // warmest has expired the loop closes them all.
    const limit = now - this.options.idleTimeoutMs;
    while (this.idle.length > 0) {
      const conn = this.idle.pop()!;
      conn.onClosedWhileIdle = null;
      if (conn.closed) continue;
      if (conn.idleSince < limit) {
        conn.close();
        continue;
      }
      this.active++;
      return conn;
    }
    return null;
  }

  /** A parked connection if one is alive, else a new one. */
  async acquire(connectTimeoutMs: number): Promise<UpstreamConnection> {
    return this.takeIdle(deadlines.coarseNow()) ?? await this.open(connectTimeoutMs);
  }

  /**
   * A new connection, lent out (never a parked one). It counts as active from
   * the start: least_conn must see a request stuck connecting.
   */
  async open(connectTimeoutMs: number): Promise<UpstreamConnection> {
    this.active++;
    try {
      return await this.connect(connectTimeoutMs);
    } catch (e) {
      this.active--;
      throw e;
    }
  }

  /** Returns a connection; it is parked for reuse only if the exchange left it clean. */
  release(conn: UpstreamConnection, reusable: boolean): void {
    this.active--;
    conn.uses++;
    if (!reusable || conn.closed || this.closedPool || this.idle.length >= this.options.maxIdle) {
      conn.close();
      return;
    }
    conn.onClosedWhileIdle = () => {
      const i = this.idle.indexOf(conn);
      if (i >= 0) this.idle.splice(i, 1);
    };
    // Idle for a timeout of seconds: a tick-old clock is close enough.
    conn.park(deadlines.coarseNow());
    this.idle.push(conn);
  }

  /** Closes connections idle for longer than the idle timeout. */
  sweep(nowMono: number): void {
    const limit = nowMono - this.options.idleTimeoutMs;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (c.closed || c.idleSince < limit) {
        this.idle.splice(i, 1);
        c.onClosedWhileIdle = null;
        c.close();
      }
    }
  }

  close(): void {
    this.closedPool = true;
    for (const c of this.idle.splice(0)) {
      c.onClosedWhileIdle = null;
      c.close();
    }
  }

  private async connect(timeoutMs: number): Promise<UpstreamConnection> {
    const t = this.target;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    /** The socket once connected, to close should the TLS handshake outlast the timeout. */
    let socket: Socket | null = null;
    const opening = this.openSocket((s) => {
      socket = s;
      if (timedOut) closeQuietly(s);
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new UpstreamError("connect_timeout", `Connecting to ${t.url} timed out`));
      }, timeoutMs);
    });
    try {
      const ready = await Promise.race([opening, timeout]);
      if (!t.tls) (ready as Deno.TcpConn).setNoDelay(true);
      return new UpstreamConnection(ready, t.url);
    } catch (e) {
      if (socket !== null) closeQuietly(socket);
      if (timedOut) {
        opening.then(closeQuietly, () => {});
        this.onConnectError?.(e as UpstreamError);
        throw e;
      }
      const err = new UpstreamError(
        "connect_error",
        `Cannot connect to ${t.url}: ${(e as Error).message}`,
        { cause: e },
      );
      this.onConnectError?.(err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A connected socket; for https, once the handshake is done. Until then
   * nothing is sent, so a refused certificate is a connect error (retried
   * whatever the method), and a handshake that hangs counts against the connect
   * timeout; Deno would otherwise do it on the first write, timed as the answer.
   */
  private async openSocket(connected: (s: Socket) => void): Promise<Socket> {
    const t = this.target;
    if (!t.tls) return await Deno.connect({ hostname: t.hostname, port: t.port });
    const conn = await Deno.connectTls({
      hostname: t.hostname,
      port: t.port,
      ...(this.options.caCerts ? { caCerts: this.options.caCerts } : {}),
    });
    connected(conn);
    await conn.handshake();
    return conn;
  }
}
