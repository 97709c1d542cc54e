/**
 * Calls from worker isolates to services hosted by the main thread (the state
 * that `--workers N` must share, such as the in-memory limiter store). One
 * message each way per call; the main thread runs calls in arrival order.
 */
import type { FromWorker, ToWorker } from "./messages.ts";

type RpcResult = Extract<ToWorker, { type: "rpc-result" }>;
type RpcCall = Extract<FromWorker, { type: "rpc" }>;

/** The worker side: one per isolate, attached by the worker entry. */
export class WorkerRpc {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve(v: unknown): void; reject(e: Error): void }
  >();
  private post: ((msg: FromWorker) => void) | null = null;

  attach(post: (msg: FromWorker) => void): void {
    this.post = post;
  }

  /** Whether this isolate is a cluster worker that can reach the main thread. */
  get attached(): boolean {
    return this.post !== null;
  }

  call(service: string, method: string, args: unknown[]): Promise<unknown> {
    if (!this.post) return Promise.reject(new Error("not running as a cluster worker"));
    const id = this.nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.pending.set(id, { resolve, reject });
    this.post({ type: "rpc", id, service, method, args });
    return promise;
  }

  settle(msg: RpcResult): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
  }
}

export const workerRpc = new WorkerRpc();

export type RpcService = Record<string, (...args: never[]) => unknown>;

/** The main-thread side: named services whose methods workers may call. */
export class RpcHost {
  private readonly services = new Map<string, RpcService>();

  register(name: string, service: RpcService): void {
    this.services.set(name, service);
  }

  async handle(call: RpcCall): Promise<RpcResult> {
    const fn = this.services.get(call.service)?.[call.method] as
      | ((...args: unknown[]) => unknown)
      | undefined;
    if (!fn) {
      return {
        type: "rpc-result",
        id: call.id,
        ok: false,
        error: `no ${call.service}.${call.method}`,
      };
    }
    try {
      return { type: "rpc-result", id: call.id, ok: true, value: await fn(...call.args) };
    } catch (e) {
      return {
        type: "rpc-result",
        id: call.id,
        ok: false,
        error: String((e as Error)?.message ?? e),
      };
    }
  }
}
