/**
 * A deliberately unreliable HTTP/1.1 upstream on loopback, written on raw TCP so
 * that it can do what a real sick service does: answer errors, hang, reset the
 * connection, or die and come back on the same port. Keep-alive like a real one.
 */

export interface FlakyRequest {
  method: string;
  path: string;
  body: string;
  /** The request head as received, without the blank line. */
  head: string;
}

/**
 * What to do with a request: answer (after `delayMs`, or once `until` settles, for
 * tests that hold an answer until a state is reached), hang until closed, or drop
 * the connection.
 */
export type Behaviour =
  | { status: number; body?: string; delayMs?: number; until?: Promise<unknown> }
  | "hang"
  | "reset"
  /** A 200 head promising more body than is sent, then the connection drops. */
  | "truncate";

export type FlakyHandler = (req: FlakyRequest, n: number) => Behaviour;

export interface Flaky {
  readonly port: number;
  readonly url: string;
  /** Requests received, health checks included. */
  readonly received: FlakyRequest[];
  /** Requests received outside `/health`. */
  hits(): number;
  handler: FlakyHandler;
  /** Kills the server: the port refuses connections and open ones are dropped. */
  stop(): Promise<void>;
  /** Brings it back on the same port. */
  start(): void;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function startFlaky(handler: FlakyHandler = () => ({ status: 200, body: "ok" })): Flaky {
  const received: FlakyRequest[] = [];
  let listener: Deno.Listener | null = null;
  let accepting: Promise<void> = Promise.resolve();
  const conns = new Set<Deno.Conn>();
  const served = new Set<Promise<void>>();
  const delays = new Map<ReturnType<typeof setTimeout>, () => void>();
  /** Settles when the server stops, releasing the answers held `until` something. */
  let stopping = Promise.withResolvers<void>();
  let port = 0;

  const self: Flaky = {
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    received,
    hits: () => received.filter((r) => r.path !== "/health").length,
    handler,
    stop: async () => {
      listener?.close();
      listener = null;
      for (const c of conns) close(c);
      for (const [t, resume] of delays) {
        clearTimeout(t);
        resume();
      }
      delays.clear();
      stopping.resolve();
      await accepting;
      await Promise.all(served);
    },
    start: () => {
      stopping = Promise.withResolvers<void>();
      listener = Deno.listen({ hostname: "127.0.0.1", port });
      port = (listener.addr as Deno.NetAddr).port;
      const l = listener;
      accepting = (async () => {
        try {
          for await (const conn of l) {
            conns.add(conn);
            const p = serve(conn).finally(() => {
              conns.delete(conn);
              served.delete(p);
            });
            served.add(p);
          }
        } catch {
          // listener closed
        }
      })();
    },
    close: () => self.stop(),
  };

  function close(c: Deno.Conn): void {
    try {
      c.close();
    } catch {
      // already closed
    }
  }

  async function serve(conn: Deno.Conn): Promise<void> {
    let buf: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    try {
      while (true) {
        let headEnd: number;
        while ((headEnd = indexOfBlankLine(buf)) < 0) {
          const n = await conn.read(chunk);
          if (n === null) return;
          buf = concat(buf, chunk.subarray(0, n));
        }
        const head = dec.decode(buf.subarray(0, headEnd));
        const [method = "", path = ""] = head.split("\r\n")[0]!.split(" ");
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        while (buf.length < headEnd + 4 + length) {
          const n = await conn.read(chunk);
          if (n === null) return;
          buf = concat(buf, chunk.subarray(0, n));
        }
        const body = dec.decode(buf.subarray(headEnd + 4, headEnd + 4 + length));
        buf = buf.slice(headEnd + 4 + length);
        const req = { method, path, body, head };
        received.push(req);
        const b = self.handler(req, received.length);
        if (b === "hang") {
          // Holds the connection until the peer or stop() closes it.
          while ((await conn.read(chunk)) !== null);
          return;
        }
        if (b === "reset") {
          close(conn);
          return;
        }
        if (b === "truncate") {
          await writeAll(
            conn,
            enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial"),
          );
          close(conn);
          return;
        }
        if (b.delayMs) {
          await new Promise<void>((r) => {
            const t = setTimeout(() => (delays.delete(t), r()), b.delayMs);
            delays.set(t, r);
          });
        }
        if (b.until) await Promise.race([b.until, stopping.promise]);
        const text = b.body ?? "";
        await writeAll(
          conn,
          enc.encode(
            `HTTP/1.1 ${b.status} X\r\ncontent-length: ${
              enc.encode(text).length
            }\r\ncontent-type: text/plain\r\n\r\n${text}`,
          ),
        );
      }
    } catch {
      // connection dropped
    } finally {
      close(conn);
    }
  }

  self.start();
  return self;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function indexOfBlankLine(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
