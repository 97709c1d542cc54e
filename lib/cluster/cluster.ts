/**
 * `--workers N`: N isolates each run the whole gateway on the same ports
 * (SO_REUSEPORT lets the kernel spread connections). The main thread serves no
 * traffic: it owns the admin listener, relays signals, restarts a worker that
 * crashes or that its watchdog finds stuck (`watchdog.ts`), and hosts the state
 * the workers must share (`RpcHost`).
 */
import { loadConfigFile } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import type { Level, Logger } from "../observe/logger.ts";
import type { ReloadResult } from "../server/gateway.ts";
import { bearerMatches, json } from "../server/admin.ts";
import { errorResponse } from "../core/errors.ts";
import { startListener } from "../server/listeners.ts";
import { AdminListenerSlot } from "../server/admin_listener.ts";
import { type ConfigWatcher, rewatch } from "../server/config_watch.ts";
import { ADMIN_ANSWER_WAIT_MS, routeAdmin } from "./admin_fanout.ts";
import { CREDENTIALS_APPLY_WAIT_MS, everyWorkerApplies } from "./credential_fanout.ts";
import { workerNames, workerTimeoutResponse } from "./timeout_response.ts";
import { answerWithin, WorkerTimeoutError } from "./worker_wait.ts";
import { RpcHost } from "./rpc.ts";
import { CredentialOwner, CREDENTIALS_SERVICE } from "./shared_credentials.ts";
import { InvalidationMarks } from "../cache/invalidation_marks.ts";
import { LIMITER_SERVICE, SharedLimiterHost } from "./shared_limiter.ts";
import { ClusterStartError, WorkerHandle } from "./worker_handle.ts";
import { sharedListenerProblem } from "./worker_count.ts";
import { Watchdog } from "./watchdog.ts";
import { workerThreads } from "./worker_threads.ts";
import {
  RESTART_REASONS,
  type RestartReason,
  type WorkerHealth,
  type WorkerRestarts,
} from "./cluster_metrics.ts";

export interface ClusterOptions {
  configFile: string;
  workers: number;
  logLevel: Level;
  logger: Logger;
  /** Waits before restarting a crashed worker, and how long serving makes it a first crash again. */
  restarts?: RestartPolicy;
  /**
   * How long a key or revocation write waits for a worker that does not apply it (default
   * `CREDENTIALS_APPLY_WAIT_MS`, 5 s); tests shorten it.
   */
  credentialsApplyWaitMs?: number;
  /**
   * How long an admin request waits for a worker's answer before it answers
   * without it (default `ADMIN_ANSWER_WAIT_MS`, 5 s; `admin_fanout.ts`); tests shorten it.
   */
  adminAnswerWaitMs?: number;
  /** How long a reload waits for each worker to confirm the new config (default `RELOAD_WAIT_MS`). */
  reloadWaitMs?: number;
  /** How long a terminated worker has to stop (default `TERMINATE_GRACE_MS`). */
  terminateGraceMs?: number;
  /**
   * The module each worker isolate runs (default `WORKER_ENTRY`, `worker_main.ts`): a test
   * wraps the real one to make a worker misbehave in ways no request can.
   */
  workerEntry?: URL;
}

/**
 * How long a worker the watchdog terminated has to stop before the process is
 * given up. A worker only slow stops as soon as it is back in its event loop;
 * one spinning in `while (true) {}` still ran 4 s after `terminate()` (Deno
 * 2.9.6, measured), and would run on.
 */
export const TERMINATE_GRACE_MS = 3_000;

/**
 * The exit code of a gateway that exits to be restarted by its supervisor
 * (EX_SOFTWARE): a worker stuck in synchronous code that Deno could not stop.
 */
export const EXIT_FOR_RESTART = 70;

/**
 * A worker's reload builds a whole plan: it may read certificates, fetch JWKS,
 * connect to Redis (each bounded by its own timeout, of seconds), and wait for
 * every worker to drop the keys of removed consumers (`credentialsApplyWaitMs`).
 * 30 s is beyond all of these, so only a stuck worker reaches it.
 */
export const RELOAD_WAIT_MS = 30_000;

/** A reload of every worker; `ok` only if each confirmed the new config. */
export interface ClusterReloadResult extends ReloadResult {
  /** Workers that took the new config. */
  confirmed: number[];
  /** Workers that did not answer within `reloadWaitMs`: they may take it when they run again. */
  unconfirmed: WorkerTimeoutError[];
}

export interface RestartPolicy {
  /** Before the first restart, the second, ...; the last repeats. */
  backoffMs: readonly number[];
  /** A worker that served this long before it crashed starts the backoff over. */
  stableMs: number;
}

const RESTARTS: RestartPolicy = { backoffMs: [250, 1_000, 5_000, 15_000], stableMs: 60_000 };

export class Cluster {
  readonly rpc = new RpcHost();
  private readonly workers: WorkerHandle[] = [];
  private readonly admin: AdminListenerSlot;
  private adminToken: string | undefined;
  private watcher: ConfigWatcher | null = null;
  private draining = false;
  private stopping: Promise<void> | null = null;
  /** A worker's whole stop: `server.drain_delay_s`, then `drain_timeout_s`. */
  private stopMs = 30_000;
  private listenerAddresses: Record<string, string> = {};
  /** The reload running, if any: the next one starts after it (see `reload`). */
  private reloading: Promise<unknown> = Promise.resolve();
  /** Restarts in a row per worker index, for the backoff. */
  private readonly restarts = new Map<number, number>();
  /** Restarts per worker index and reason since the process started (`gateway_worker_restarts_total`). */
  private readonly restartTotals = new Map<number, Record<RestartReason, number>>();
  /** Terminates a worker that stops answering pings (`server.watchdog`), which then restarts. */
  private readonly watchdog = new Watchdog<WorkerHandle>({
    workers: () => this.serving(),
    onSilent: (w, silentMs) => this.unresponsive(w, silentMs),
  });
  private readonly restartWanted = Promise.withResolvers<void>();
  /** Restarts and silences of the workers, for `/metrics`. */
  private readonly health: WorkerHealth = {
    restarts: () => {
      const out: WorkerRestarts[] = [];
      for (let worker = 0; worker < this.workers.length; worker++) {
        const totals = this.restartTotals.get(worker);
        for (const reason of RESTART_REASONS) {
          out.push({ worker, reason, count: totals?.[reason] ?? 0 });
        }
      }
      return out;
    },
    silences: () => this.watchdog.silences(),
  };
  /** The text of the config every worker serves: the one a restarted worker starts on. */
  private configText: string;
  /** Keys and revocations of `store.kind: memory`, the one copy every worker mirrors. */
  private readonly credentials = new CredentialOwner(
    () => Date.now(),
    (change) =>
      everyWorkerApplies(this.live(), change, {
        waitMs: this.o.credentialsApplyWaitMs,
        logger: this.o.logger,
      }),
  );

  /** Rate-limit states of `store.kind: memory`: a table every worker maps, and the rest. */
  private readonly limiter = new SharedLimiterHost((buffer) => {
    for (const w of this.live()) w.tell({ type: "limiter-table", buffer });
  });

  /**
   * Cache invalidations every worker sees: each worker's memory cache is its
   * own, and the worker that proxies a write is rarely the one that cached the read.
   */
  private readonly cacheMarks = new InvalidationMarks();

  private constructor(private readonly o: ClusterOptions, configText: string) {
    this.configText = configText;
    this.admin = new AdminListenerSlot((at) =>
      startListener(
        { name: "admin", host: at.host, port: at.port, proxy_protocol: false },
        (req) => this.handleAdmin(req.request()),
        { resolvePath: (p) => p },
      ), o.logger);
    this.rpc.register(CREDENTIALS_SERVICE, this.credentials.service());
    this.rpc.register(LIMITER_SERVICE, this.limiter.service());
  }

  /** Starts every worker and the admin listener; throws `ConfigError` or `ClusterStartError`. */
  static async start(o: ClusterOptions): Promise<Cluster> {
    const { config, text } = await loadConfigFile(o.configFile);
    const problem = sharedListenerProblem(config);
    if (problem) throw new ClusterStartError([`${o.workers} workers need fixed ports: ${problem}`]);
    const cluster = new Cluster(o, text);
    try {
      for (let i = 0; i < o.workers; i++) cluster.workers.push(cluster.spawn(i));
      const addresses = await Promise.all(cluster.workers.map((w) => w.ready()));
      cluster.listenerAddresses = addresses[0]!;
      await cluster.applyConfig(config).catch((e) => {
        throw new ClusterStartError([
          `cannot open the admin listener on ${config.admin?.host}:${config.admin?.port}: ${
            (e as Error).message
          }`,
        ]);
      });
    } catch (e) {
      cluster.draining = true;
      cluster.watchdog.stop();
      for (const w of cluster.workers) w.terminate();
      await cluster.admin.close();
      throw e;
    }
    o.logger.info("cluster started", {
      workers: o.workers,
      listeners: cluster.addresses(),
    });
    return cluster;
  }

  /**
   * Resolves when a worker the watchdog terminated is still running (`worker_threads.ts`):
   * it holds a core and its listeners, and only the end of the process stops it. The
   * CLI then drains the cluster and exits with `EXIT_FOR_RESTART`.
   */
  get processRestartWanted(): Promise<void> {
    return this.restartWanted.promise;
  }

  addresses(): Record<string, string> {
    const out = { ...this.listenerAddresses };
    const admin = this.admin.listener;
    if (admin) out.admin = `http://${hostForUrl(admin.hostname)}:${admin.port}`;
    return out;
  }

  /**
   * Reloads every worker at once, each within `reloadWaitMs`; the result is ok
   * only if all of them took the new config. A worker that does not answer in
   * time is named in `unconfirmed`, and the others keep the config they took.
   * Reloads run one at a time, as a single gateway's do: SIGHUP, `POST /reload`
   * and the file watch side by side could apply an older file's admin, drain and
   * watch settings after a newer one's.
   */
  reload(trigger: string): Promise<ClusterReloadResult> {
    const next = this.reloading.then(() => this.reloadAll(trigger));
    this.reloading = next.catch(() => {});
    return next;
  }

  private async reloadAll(trigger: string): Promise<ClusterReloadResult> {
    // A config that does not load is left to the workers: each reports where it is wrong.
    const loaded = await loadConfigFile(this.o.configFile).catch(() => null);
    const problem = loaded && sharedListenerProblem(loaded.config);
    const wait = { waitMs: this.o.reloadWaitMs ?? RELOAD_WAIT_MS };
    const results: ReloadResult[] = [];
    const confirmed: number[] = [];
    const unconfirmed: WorkerTimeoutError[] = [];
    if (problem) {
      results.push({
        ok: false,
        hash: null,
        errors: [`the running workers cannot take it: ${problem}`],
      });
    }
    await Promise.all((problem ? [] : this.serving()).map(async (w) => {
      const index = w.options.index;
      try {
        const r = await answerWithin(index, "the reload", (s) => w.reload(trigger, s), wait);
        results.push(r);
        if (r.ok) confirmed.push(index);
      } catch (e) {
        // `WorkerHandle.reload` settles every other failure as a result.
        if (!(e instanceof WorkerTimeoutError)) throw e;
        unconfirmed.push(e);
      }
    }));
    // Those that answered took it; a stuck one is not a reason to run the old config beside them.
    const took = results.length > 0 && results.every((r) => r.ok);
    const errors = [...new Set(results.flatMap((r) => r.errors))];
    // What the workers took, if it is what this thread read: the file may change in between.
    if (took && loaded && results.every((r) => r.hash === loaded.hash)) {
      this.configText = loaded.text;
    }
    if (took && loaded) {
      try {
        await this.applyConfig(loaded.config);
      } catch (e) {
        errors.push(`admin listener: ${(e as Error).message}`);
      }
    }
    const ok = took && unconfirmed.length === 0 && errors.length === 0;
    if (!ok) {
      this.o.logger.error("cluster reload incomplete", {
        trigger,
        errors,
        ...(unconfirmed.length > 0
          ? { unconfirmed_workers: unconfirmed.map((e) => e.worker), waited_ms: wait.waitMs }
          : {}),
      });
    }
    if (trigger !== "watch") await this.watcher?.remember();
    return {
      ok,
      hash: results[0]?.hash ?? null,
      errors,
      confirmed: confirmed.sort((a, b) => a - b),
      unconfirmed: unconfirmed.sort((a, b) => a.worker - b.worker),
    };
  }

  /** SIGUSR1: every worker reopens its access log files (after logrotate moved them). */
  reopenLogs(): Promise<void> {
    for (const w of this.live()) w.tell({ type: "reopen-logs" });
    return Promise.resolve();
  }

  /**
   * Drains every worker (each within the drain deadline), then closes the admin
   * listener. A second call returns the same drain, so a second signal changes nothing.
   */
  shutdown(): Promise<void> {
    return this.stopping ??= this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    this.o.logger.info("draining workers", { workers: this.workers.length });
    // A draining worker is not restarted: it is not watched either.
    this.watchdog.stop();
    this.watcher?.close();
    this.watcher = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, this.stopMs)));
    await Promise.all(this.workers.map((w) => w.shutdown(this.stopMs + 2_000)));
    // Its requests (a head still arriving included) within the drain's bound, not its own timeouts.
    await Promise.race([this.admin.close(), deadline]);
    clearTimeout(timer);
    this.o.logger.info("stopped");
  }

  private live(): WorkerHandle[] {
    return this.workers.filter((w) => !w.dead);
  }

  /** Workers with a gateway running: a restarting one has none to reload or ask yet. */
  private serving(): WorkerHandle[] {
    return this.workers.filter((w) => w.serving);
  }

  private spawn(index: number): WorkerHandle {
    return new WorkerHandle(
      {
        index,
        configFile: this.o.configFile,
        configText: this.configText,
        logLevel: this.o.logLevel,
        credentials: this.credentials.snapshot(),
        limiterTable: this.limiter.table.buffer,
        cacheMarks: this.cacheMarks.buffer,
      },
      this.rpc,
      this.o.logger,
      (w, error) => this.crashed(w, error),
      this.o.workerEntry,
    );
  }

  private crashed(w: WorkerHandle, error: string): void {
    this.restartLater(w, "crash", "worker crashed; restarting", { error });
  }

  /**
   * The watchdog found `w` silent for `silentMs`: its isolate is stuck (a busy
   * loop, a synchronous call that never ends), which no crash would ever end.
   * The worker is terminated and restarts as after a crash; whether the
   * terminate stopped the isolate is checked after a grace (`checkStopped`).
   */
  private unresponsive(w: WorkerHandle, silentMs: number): void {
    if (this.draining || w.dead) return;
    w.terminate();
    this.restartLater(w, "unresponsive", "worker unresponsive; restarting", {
      silent_ms: Math.round(silentMs),
    });
    const grace = this.o.terminateGraceMs ?? TERMINATE_GRACE_MS;
    setTimeout(() => void this.checkStopped(w.options.index, grace), grace);
  }

  /**
   * A terminated worker whose thread still runs keeps its listeners in the
   * `SO_REUSEPORT` group: the kernel hands them new connections, which hang
   * beside the replacement's, and no restart of the worker ends that. Where
   * threads cannot be counted (not Linux), it is assumed to run.
   */
  private async checkStopped(worker: number, graceMs: number): Promise<void> {
    if (this.draining) return;
    const threads = await workerThreads();
    const live = this.live().length;
    if (threads !== null && threads <= live) return;
    this.o.logger.error("terminated worker still running; exiting to be restarted", {
      worker,
      waited_ms: graceMs,
      worker_threads: threads,
      live_workers: live,
      exit_code: EXIT_FOR_RESTART,
    });
    this.restartWanted.resolve();
  }

  /** Restarts the dead worker `w` after the backoff, freeing the limiter lock it may hold. */
  private restartLater(
    w: WorkerHandle,
    reason: RestartReason,
    msg: string,
    fields: Record<string, unknown>,
  ): void {
    if (this.draining) return;
    const index = w.options.index;
    // Crashes weeks apart are not "repeated": one that served a while starts the backoff over.
    const policy = this.o.restarts ?? RESTARTS;
    if (w.servedFor() >= policy.stableMs) this.restarts.delete(index);
    const n = this.restarts.get(index) ?? 0;
    const delay = policy.backoffMs[Math.min(n, policy.backoffMs.length - 1)]!;
    this.restarts.set(index, n + 1);
    const totals = this.restartTotals.get(index) ?? { crash: 0, unresponsive: 0 };
    totals[reason]++;
    this.restartTotals.set(index, totals);
    // A terminated worker stuck while holding the lock is stuck inside its critical section (and
    // may run on: `checkStopped`); the others must not wait on it, so the lock is freed now.
    if (this.limiter.releaseIfHeldBy(index + 1)) {
      const who = reason === "crash" ? "crashed" : "terminated";
      this.o.logger.warn(`freed the rate-limit table's lock the ${who} worker held`, {
        worker: index,
      });
    }
    this.o.logger.error(msg, { worker: index, ...fields, in_ms: delay });
    setTimeout(() => this.restart(index), delay);
  }

  /**
   * A restart reads the config file, which may not load (an edit not reloaded yet): such a
   * restart counts as another crash, so it is tried again, with the same backoff.
   */
  private restart(index: number): void {
    if (this.draining) return;
    const next = this.spawn(index);
    this.workers[index] = next;
    next.ready().then(
      () => this.o.logger.info("worker restarted", { worker: index }),
      (e) => {
        // A crash while starting has already been reported by the handle.
        if (next.dead) return;
        this.o.logger.error("worker restart failed", { worker: index, error: String(e) });
        next.terminate();
        this.crashed(next, String(e));
      },
    );
  }

  /**
   * What the main thread takes from the config: the stop deadline, the file
   * watch (one for the cluster: a change reloads every worker), the watchdog and
   * the admin listener.
   */
  private async applyConfig(config: GatewayConfig): Promise<void> {
    this.stopMs = (config.server.drain_delay_s + config.server.drain_timeout_s) * 1000;
    this.applyWatch(config);
    const dog = config.server.watchdog;
    if (!this.draining) {
      this.watchdog.configure({
        intervalMs: dog.interval_ms,
        killAfterMs: dog.kill_after_s * 1000,
      });
    }
    this.adminToken = config.admin?.token;
    await this.admin.apply(config.admin);
  }

  private applyWatch(config: GatewayConfig): void {
    const w = config.server.config_watch;
    this.watcher = rewatch(
      this.watcher,
      this.o.configFile,
      { enabled: w.enabled && !this.draining, debounceMs: w.debounce_ms },
      () => void this.reload("watch"),
      this.o.logger,
    );
  }

  private async handleAdmin(req: Request): Promise<Response> {
    if (!bearerMatches(req, this.adminToken)) {
      return errorResponse("missing_credentials", crypto.randomUUID(), {
        headers: { "www-authenticate": 'Bearer realm="admin"' },
      });
    }
    if (req.method === "POST" && new URL(req.url).pathname === "/reload") {
      return reloadResponse(await this.reload("admin"));
    }
    const waitMs = this.o.adminAnswerWaitMs ?? ADMIN_ANSWER_WAIT_MS;
    return routeAdmin(req, this.serving(), {
      waitMs,
      sharedWriteWaitMs: waitMs + (this.o.credentialsApplyWaitMs ?? CREDENTIALS_APPLY_WAIT_MS),
      health: this.health,
    });
  }
}

/**
 * `POST /reload` of a cluster: 200, or 422 with the errors of the workers that
 * refused the config, or, when the only trouble is workers that did not
 * answer, 504 `worker_timeout` naming them.
 */
function reloadResponse(r: ClusterReloadResult): Response {
  const { ok, hash, errors } = r;
  if (ok) return json({ ok, hash, errors }, 200);
  if (errors.length > 0 || r.unconfirmed.length === 0) {
    return json({ ok, hash, errors: [...errors, ...r.unconfirmed.map((e) => e.message)] }, 422);
  }
  const n = r.confirmed.length;
  const running = n > 0 ? `; ${workerNames(r.confirmed)} ${n === 1 ? "runs" : "run"} it` : "";
  return workerTimeoutResponse(
    r.unconfirmed,
    `: the new config is not confirmed there${running} (a stuck worker takes it when it runs again)`,
  );
}

function hostForUrl(h: string): string {
  return h.includes(":") ? `[${h}]` : h;
}
