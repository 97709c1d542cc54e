/**
 * What the main thread and the worker isolates of `--workers N` say to each
 * other. Requests and responses cross as plain data (structured clone).
 */
import type { ReloadResult } from "../server/gateway.ts";
import type { Level } from "../observe/logger.ts";
import type { CredentialChange, CredentialSnapshot } from "./shared_credentials.ts";
import type { RpcCall, RpcResult } from "./rpc.ts";

export interface WireRequest {
  method: string;
  /** Absolute URL as the admin listener received it. */
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
}

export interface WireResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer;
}

export interface StartOptions {
  index: number;
  configFile: string;
  /** The text of the config the cluster serves, which the worker starts on. */
  configText: string;
  logLevel: Level;
  /** Keys and revocations as they are now (store.kind: memory); changes follow as messages. */
  credentials: CredentialSnapshot;
  /** The rate-limit table every worker shares (`limiter_table.ts`). */
  limiterTable: SharedArrayBuffer;
  /** When each cached URI was last invalidated, by any worker (`cache/invalidation_marks.ts`). */
  cacheMarks: SharedArrayBuffer;
}

/** Main thread -> worker. */
export type ToWorker =
  | { type: "start"; options: StartOptions }
  | { type: "reload"; id: number; trigger: string }
  | { type: "admin"; id: number; request: WireRequest }
  | { type: "shutdown" }
  | { type: "reopen-logs" }
  /** Answered by `credentials-applied` with the same id once the worker's mirror has it. */
  | { type: "credentials"; id: number; change: CredentialChange }
  | { type: "rpc-results"; results: RpcResult[] }
  | { type: "limiter-table"; buffer: SharedArrayBuffer }
  /** The watchdog's (`watchdog.ts`): answered by `pong` from the worker's event loop. */
  | { type: "ping" };

/** Worker -> main thread. */
export type FromWorker =
  | { type: "started"; addresses: Record<string, string> }
  | { type: "failed"; errors: string[] }
  | { type: "reloaded"; id: number; result: ReloadResult }
  | { type: "admin-response"; id: number; response: WireResponse }
  | { type: "credentials-applied"; id: number }
  | { type: "stopped" }
  | { type: "rpc"; calls: RpcCall[] }
  | { type: "pong" };

export async function toWire(req: Request): Promise<WireRequest> {
  return {
    method: req.method,
    url: req.url,
    headers: [...req.headers],
    body: req.body ? await req.arrayBuffer() : null,
  };
}

export function fromWire(w: WireRequest): Request {
  return new Request(w.url, {
    method: w.method,
    headers: w.headers,
    ...(w.body !== null && w.method !== "GET" && w.method !== "HEAD" ? { body: w.body } : {}),
  });
}

export async function responseToWire(res: Response): Promise<WireResponse> {
  return { status: res.status, headers: [...res.headers], body: await res.arrayBuffer() };
}

export function responseFromWire(w: WireResponse): Response {
  const nullBody = w.status === 204 || w.status === 304;
  return new Response(nullBody ? null : w.body, { status: w.status, headers: w.headers });
}
