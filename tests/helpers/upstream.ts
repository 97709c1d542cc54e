/**
 * Real HTTP servers on loopback for tests: an upstream that records what it
 * received, started on a free port and stopped by the test that started it.
 */
import { freePort } from "./ports.ts";

export interface Received {
  method: string;
  /** Path and query exactly as the upstream saw them. */
  url: string;
  headers: Headers;
}

export interface TestServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Requests seen so far, in arrival order. */
  readonly received: Received[];
  close(): Promise<void>;
}

export type TestHandler = (req: Request, received: Received) => Response | Promise<Response>;

/** Starts an upstream; the default handler echoes method, path and headers as JSON. */
export function startUpstream(handler: TestHandler = echo, name = "upstream"): TestServer {
  const received: Received[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const u = new URL(req.url);
      const r = { method: req.method, url: u.pathname + u.search, headers: req.headers };
      received.push(r);
      return handler(req, r);
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  void name;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

/** Echoes the request as JSON: method, url, headers (lower-case names, joined values) and body length. */
export async function echo(req: Request, r: Received): Promise<Response> {
  const body = req.body ? (await req.arrayBuffer()).byteLength : 0;
  return Response.json({
    method: r.method,
    url: r.url,
    headers: Object.fromEntries(r.headers),
    body_bytes: body,
  });
}

/** A TCP port nobody listens on. */
export function closedPort(): number {
  return freePort();
}
