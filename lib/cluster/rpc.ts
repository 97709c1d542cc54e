/**
 * Calls from worker isolates to services hosted by the main thread (the state
 * that `--workers N` must share, such as the in-memory limiter store).
 *
 * Calls are batched adaptively: with nothing in flight a call leaves at once;
 * while batches are in flight, new calls wait and leave together with the next
 * one. An idle gateway pays one message each way per call, a loaded one a
 * fraction of that. The main thread runs the calls of a batch in order.
 */
import type { FromWorker, ToWorker } from "./messages.ts";

export interface RpcCall {
  id: number;
  service: string;
  method: string;
  args: unknown[];
}

export type RpcResult =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string };

/** Batches in flight at most; more calls queue for the next batch. */
const MAX_IN_FLIGHT = 2;

/** The worker side: one per isolate, attached by the worker entry. */
export class WorkerRpc {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve(v: unknown): void; reject(e: Error): void }
  >();
  private queue: RpcCall[] = [];
  private inFlight = 0;
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
    this.queue.push({ id, service, method, args });
    if (this.inFlight < MAX_IN_FLIGHT) this.flush();
    return promise;
  }

  /** The main thread's answers to one batch. */
  settle(results: RpcResult[]): void {
    for (const r of results) {
      const p = this.pending.get(r.id);
      if (!p) continue;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(new Error(r.error));
    }
    this.inFlight--;
    this.flush();
  }

  private flush(): void {
    if (this.queue.length === 0 || !this.post) return;
    const calls = this.queue;
    this.queue = [];
    this.inFlight++;
    this.post({ type: "rpc", calls });
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

  /** Runs a batch in order; an async method holds back the calls after it. */
  async handle(calls: RpcCall[]): Promise<Extract<ToWorker, { type: "rpc-results" }>> {
    const results: RpcResult[] = new Array(calls.length);
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i]!;
      const fn = this.services.get(c.service)?.[c.method] as
        | ((...args: unknown[]) => unknown)
        | undefined;
      try {
        if (!fn) throw new Error(`no ${c.service}.${c.method}`);
        const v = fn(...c.args);
        results[i] = { id: c.id, ok: true, value: v instanceof Promise ? await v : v };
      } catch (e) {
        results[i] = { id: c.id, ok: false, error: String((e as Error)?.message ?? e) };
      }
    }
    return { type: "rpc-results", results };
  }
}
