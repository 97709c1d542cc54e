/** The main thread's view of one worker isolate: start it, ask it things, stop it. */
import type { Logger } from "../observe/logger.ts";
import type { ReloadResult } from "../server/gateway.ts";
import type { RpcHost } from "./rpc.ts";
import type { CredentialChange } from "./shared_credentials.ts";
import {
  type FromWorker,
  responseFromWire,
  type StartOptions,
  toWire,
  type ToWorker,
} from "./messages.ts";

/** The module each worker isolate runs (`ClusterOptions.workerEntry` replaces it in tests). */
export const WORKER_ENTRY = new URL("./worker_main.ts", import.meta.url);

/** Why `--workers N` could not start: each line is one problem, as the CLI prints it. */
export class ClusterStartError extends Error {
  override name = "ClusterStartError";
  constructor(readonly errors: string[]) {
    super(errors.join("; "));
  }
}

export class WorkerHandle {
  private worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, (msg: FromWorker | null) => void>();
  private readonly started = Promise.withResolvers<Record<string, string>>();
  private readonly stopped = Promise.withResolvers<void>();
  /** Set when the isolate died or was terminated; calls fail fast after that. */
  dead = false;
  private hasStarted = false;
  private startedAt = 0;
  /** What the outstanding watchdog ping's pong runs (`watchdog.ts` sends one at a time). */
  private pongHeard: (() => void) | null = null;

  constructor(
    readonly options: StartOptions,
    private readonly rpc: RpcHost,
    private readonly logger: Logger,
    private readonly onCrash: (w: WorkerHandle, error: string) => void,
    entry: URL = WORKER_ENTRY,
  ) {
    this.started.promise.catch(() => {}); // a crash before start is reported through ready()
    this.worker = new Worker(entry, { type: "module", name: `gateway-worker-${options.index}` });
    this.worker.onmessage = (ev: MessageEvent<FromWorker>) => this.receive(ev.data);
    this.worker.onerror = (ev) => {
      ev.preventDefault();
      this.die(ev.message ?? "uncaught error");
    };
    this.worker.onmessageerror = () => this.logger.error("unreadable message from worker");
    this.send({ type: "start", options });
  }

  /** The gateway in the worker has started and the isolate is alive. */
  get serving(): boolean {
    return this.hasStarted && !this.dead;
  }

  /** How long the gateway in the worker has served (ms), 0 if it never started. */
  servedFor(): number {
    return this.hasStarted ? performance.now() - this.startedAt : 0;
  }

  /** Resolves with the listener addresses once the gateway in the worker serves. */
  ready(): Promise<Record<string, string>> {
    return this.started.promise;
  }

  /** `signal` (`answerWithin`) gives up the wait: the answer, if it comes, is dropped. */
  reload(trigger: string, signal?: AbortSignal): Promise<ReloadResult> {
    return this.ask<ReloadResult>(
      (id) => ({ type: "reload", id, trigger }),
      (m) => m.type === "reloaded" ? m.result : undefined,
      [],
      signal,
    ).catch((e) => ({ ok: false, hash: null, errors: [`worker ${this.options.index}: ${e}`] }));
  }

  /** `signal` (`answerWithin`) gives up the wait: the answer, if it comes, is dropped. */
  async admin(req: Request, signal?: AbortSignal): Promise<Response> {
    const request = await toWire(req);
    const wire = await this.ask(
      (id) => ({ type: "admin", id, request }),
      (m) => m.type === "admin-response" ? m.response : undefined,
      request.body ? [request.body] : [],
      signal,
    );
    return responseFromWire(wire);
  }

  /** Asks the gateway to drain; resolves when it has stopped or the deadline passed. */
  async shutdown(deadlineMs: number): Promise<void> {
    if (!this.dead) {
      this.send({ type: "shutdown" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.stopped.promise,
        new Promise((r) => (timer = setTimeout(r, deadlineMs))),
      ]);
      clearTimeout(timer);
    }
    this.terminate();
  }

  /** The watchdog's ping: `answered` runs when the worker's event loop answers it. */
  ping(answered: () => void): void {
    if (this.dead) return;
    this.pongHeard = answered;
    this.send({ type: "ping" });
  }

  terminate(): void {
    this.dead = true;
    this.pongHeard = null;
    this.worker.terminate();
    for (const settle of this.pending.values()) settle(null);
    this.pending.clear();
  }

  /**
   * Applies a key or revocation change to the worker's mirror; resolves once it
   * has, or once the worker is gone (a restarted worker starts from the snapshot).
   */
  applyCredentials(change: CredentialChange): Promise<void> {
    return this.ask(
      (id) => ({ type: "credentials", id, change }),
      (m) => m.type === "credentials-applied" ? true : undefined,
    ).then(() => {}, () => {});
  }

  /** A message that needs no answer. */
  tell(msg: ToWorker): void {
    if (!this.dead) this.send(msg);
  }

  private send(msg: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  /**
   * Posts a question and settles with its answer. When `signal` aborts, the
   * question is forgotten, so a stuck worker's unanswered questions do not pile
   * up, and an answer that comes after is dropped by `receive`.
   */
  private ask<T>(
    build: (id: number) => ToWorker,
    pick: (m: FromWorker) => T | undefined,
    transfer: Transferable[] = [],
    signal?: AbortSignal,
  ): Promise<T> {
    if (this.dead) return Promise.reject(new Error(`worker ${this.options.index} is not running`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const forget = () => {
      this.pending.delete(id);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", forget, { once: true });
    this.pending.set(id, (m) => {
      signal?.removeEventListener("abort", forget);
      const v = m ? pick(m) : undefined;
      if (v === undefined) reject(new Error(`worker ${this.options.index} stopped`));
      else resolve(v);
    });
    this.send(build(id), transfer);
    return promise;
  }

  private receive(msg: FromWorker): void {
    switch (msg.type) {
      case "started":
        this.hasStarted = true;
        this.startedAt = performance.now();
        this.started.resolve(msg.addresses);
        return;
      case "failed":
        this.started.reject(new ClusterStartError(msg.errors));
        return;
      case "stopped":
        this.stopped.resolve();
        return;
      case "rpc":
        void this.rpc.handle(msg.calls).then((r) => {
          if (!this.dead) this.send(r);
        });
        return;
      case "pong": {
        // A pong that comes after `terminate` is the stuck worker's, too late to matter.
        const heard = this.dead ? null : this.pongHeard;
        this.pongHeard = null;
        heard?.();
        return;
      }
      case "reloaded":
      case "admin-response":
      case "credentials-applied": {
        const settle = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        settle?.(msg);
        return;
      }
    }
  }

  private die(error: string): void {
    if (this.dead) return;
    this.started.reject(new ClusterStartError([`worker ${this.options.index} crashed: ${error}`]));
    this.terminate();
    this.onCrash(this, error);
  }
}
