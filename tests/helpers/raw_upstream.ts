/**
 * An upstream on raw TCP that answers with exactly the bytes a test scripts:
 * malformed heads, odd framing, answers before the request body. Request
 * bodies are not read (the tests that use it send none, or want them unread).
 */

export interface RawExchange {
  /** The request's path, as the upstream saw it. */
  readonly path: string;
  /** The request head as received (a byte string, without its blank line). */
  readonly head: string;
  /** Requests this connection served before this one. */
  readonly served: number;
  /** Writes a byte string (each char one byte). */
  write(bytes: string): Promise<void>;
  /** Closes the connection: nothing more is read or answered on it. */
  close(): void;
}

export interface RawUpstream {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Paths of the requests received, in order. */
  readonly paths: string[];
  connections(): number;
  close(): void;
}

export function startRawUpstream(answer: (x: RawExchange) => Promise<void> | void): RawUpstream {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const paths: string[] = [];
  let connections = 0;
  const serveConn = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      conn.close();
    };
    try {
      let pending = "";
      for (let served = 0; !closed; served++) {
        let end: number;
        while ((end = pending.indexOf("\r\n\r\n")) < 0) {
          const got = await conn.read(buf);
          if (got === null) return;
          for (let i = 0; i < got; i++) pending += String.fromCharCode(buf[i]!);
        }
        const head = pending.slice(0, end);
        const path = head.split(" ")[1] ?? "";
        pending = pending.slice(end + 4);
        paths.push(path);
        await answer({
          path,
          head,
          served,
          write: (text) => writeAll(conn, byteString(text)),
          close,
        });
      }
    } catch {
      // the gateway closed the connection
    } finally {
      close();
    }
  };
  (async () => {
    for await (const conn of listener) {
      connections++;
      serveConn(conn);
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    paths,
    connections: () => connections,
    close: () => listener.close(),
  };
}

/**
 * Each char as one byte. A plain loop: `Uint8Array.from(text, fn)` walks the string's
 * iterator and took 2.3 s for a 2 MiB head, most of a request's time limit.
 */
function byteString(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
