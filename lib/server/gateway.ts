/**
 * The running gateway: loads the config, compiles the plan, opens the
 * listeners, reloads without dropping a request, and drains on shutdown.
 */
import {
  type Env,
  loadConfigFile,
  type LoadedConfig,
  parseConfig,
  processEnv,
} from "../config/load.ts";
import { ConfigError, formatIssue } from "../config/issues.ts";
import type { ListenerConfig } from "./schema.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { errorFields, JsonLogger, type Logger } from "../observe/logger.ts";
import { PoolRegistry } from "../proxy/pools.ts";
import { OpenUpgrades } from "../proxy/open_upgrades.ts";
import { RedisConnections } from "../store/redis.ts";
import { ResilienceRegistry } from "../resilience/registry.ts";
import { registerResilienceAdmin } from "../resilience/admin.ts";
import { MemoryLimiterStore } from "../store/memory_limiter.ts";
import { buildPlan } from "../plan/build.ts";
import { PlanHolder } from "../plan/holder.ts";
import type { Plan } from "../plan/plan.ts";
import { filesChanged } from "../plan/files_read.ts";
import type { RuntimeDeps } from "../plan/deps.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { LocalLimiterStore } from "../store/limiter_store.ts";
import { createHandler, createRefusalRecorder } from "./handler.ts";
import {
  listenerIdentity,
  preflightListener,
  type RunningListener,
  startListener,
} from "./listeners.ts";
import { replaceListener, retire, SwapFailed } from "./listener_swap.ts";
import { TlsFileError } from "./tls_files.ts";
import type { YamlSource } from "../config/yaml_source.ts";
import { PROXY_HEADER_TIMEOUT_MS, type ProxyProtocolOptions } from "./proxy_protocol/listener.ts";
import { AdminApi, json } from "./admin.ts";
import { AdminListenerSlot } from "./admin_listener.ts";
import { registerCoreAdmin } from "./admin_core.ts";
import { registerObserveAdmin } from "./admin_observe.ts";
import { type ConfigWatcher, rewatch } from "./config_watch.ts";
import { MetricsRegistry } from "../observe/metrics/registry.ts";
import { LogSinks, type Output } from "../observe/log_sink.ts";
import { registerAuthAdmin } from "../auth/admin.ts";
import { registerCacheAdmin } from "../cache/admin.ts";
import { CacheStores } from "../cache/stores.ts";
import type { InvalidationMarks } from "../cache/invalidation_marks.ts";
import { dirname } from "node:path";

export interface GatewayOptions {
  configFile: string;
  /**
   * The config's text to start on, instead of reading `configFile` (whose folder
   * relative paths still resolve against): a restarted cluster worker starts on
   * what the others serve, not on an edit of the file not reloaded yet.
   */
  configText?: string;
  env?: Env;
  clock?: Clock;
  logger?: Logger;
  /** Standard output, where the access log goes by default; injectable like `logger`. */
  stdout?: Output;
  /** Share listener ports with other workers (SO_REUSEPORT). */
  reusePort?: boolean;
  /** Open the admin listener (default true); cluster workers leave it to the main thread. */
  adminListener?: boolean;
  /** Watch the config file as `server.config_watch` says (default true); cluster workers do not. */
  configWatch?: boolean;
  /** Keys and revocations shared with other workers (`RuntimeDeps.localCredentials`). */
  localCredentials?: CredentialStore;
  /** Rate-limit state shared with other workers (default: this isolate's own memory store). */
  localLimiter?: LocalLimiterStore;
  /** Cache invalidations shared with other workers (default: none, one isolate sees them all). */
  cacheMarks?: InvalidationMarks;
}

const SHUTTING_DOWN = "the gateway is shutting down";

export interface ReloadResult {
  ok: boolean;
  hash: string | null;
  errors: string[];
}

export class Gateway {
  readonly holder = new PlanHolder();
  readonly deps: RuntimeDeps;
  readonly admin: AdminApi;
  private readonly listeners = new Map<string, OpenListener>();
  /** Drains of listeners a reload replaced or dropped: a shutdown waits for them too. */
  private readonly retiring = new Set<Promise<void>>();
  private readonly adminSlot: AdminListenerSlot;
  private reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, hash: null, errors: [] });
  private watcher: ConfigWatcher | null = null;
  draining = false;
  private stopping: Promise<void> | null = null;
  reloads = { ok: 0, failed: 0, lastOk: true };
  /** Client connections each listener closed at once because it held `max_connections`. */
  readonly connectionsRefused = new Map<string, number>();
  /** Idle client connections each listener closed to serve a new one at `max_connections`. */
  readonly connectionsReclaimed = new Map<string, number>();

  private constructor(readonly options: GatewayOptions, deps: RuntimeDeps) {
    this.deps = deps;
    this.admin = new AdminApi(undefined, () => this.holder.current !== null);
    this.adminSlot = new AdminListenerSlot((at) =>
      startListener(
        { name: "admin", host: at.host, port: at.port, proxy_protocol: false },
        (req) => Promise.resolve(this.admin.handle(req.request())),
        { resolvePath: (p) => p },
      ), deps.logger);
    registerCoreAdmin(this);
    registerObserveAdmin(this);
    registerResilienceAdmin(this);
    registerCacheAdmin(this);
    registerAuthAdmin(this);
  }

  /** Loads, compiles and starts serving. Throws `ConfigError` if the config is invalid. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const logger = options.logger ?? new JsonLogger();
    const deps: RuntimeDeps = {
      clock: options.clock ?? systemClock,
      logger,
      pools: new PoolRegistry(logger),
      redis: new RedisConnections(logger),
      metrics: new MetricsRegistry(),
      accessLogs: new LogSinks(logger, options.stdout),
      resilience: new ResilienceRegistry(),
      caches: new CacheStores(options.cacheMarks ?? null),
      ...(options.localCredentials ? { localCredentials: options.localCredentials } : {}),
      localLimiter: options.localLimiter ?? new MemoryLimiterStore(),
      upgrades: new OpenUpgrades(),
    };
    const gw = new Gateway(options, deps);
    const env = options.env ?? processEnv;
    const loaded = options.configText === undefined
      ? await loadConfigFile(options.configFile, env)
      : await parseConfig(options.configText, options.configFile, env);
    let plan: Plan;
    try {
      // The admin API answers (/healthz; /readyz says "starting") while the first plan builds.
      await gw.applyAdmin(loaded.config).catch((e) => {
        throw new ConfigError([
          loaded.source.issue(["admin"], `cannot open the admin listener: ${(e as Error).message}`),
        ]);
      });
      plan = await buildPlan(loaded, deps);
    } catch (e) {
      await gw.closeAdmin();
      throw e;
    }
    try {
      await gw.applyListeners(plan, loaded.source);
    } catch (e) {
      await plan.dispose();
      await gw.closeListeners();
      await gw.closeAdmin();
      throw e;
    }
    gw.holder.swap(plan);
    gw.applyWatch(plan);
    logger.info("gateway started", {
      config: options.configFile,
      config_hash: plan.hash,
      routes: plan.routes.length,
      listeners: gw.addresses(),
    });
    return gw;
  }

  get plan(): Plan {
    return this.holder.current!;
  }

  /** Bound addresses by listener name (`admin` for the admin listener). */
  addresses(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, { running }] of this.listeners) {
      out[name] = `${running.tls ? "https" : "http"}://${
        hostForUrl(running.hostname)
      }:${running.port}`;
    }
    const admin = this.adminSlot.listener;
    if (admin) out.admin = `http://${hostForUrl(admin.hostname)}:${admin.port}`;
    return out;
  }

  listener(name: string): RunningListener | undefined {
    return name === "admin"
      ? this.adminSlot.listener ?? undefined
      : this.listeners.get(name)?.running;
  }

  /**
   * Re-reads the config file and swaps in the new plan. On any error the
   * current plan keeps serving and every problem is logged. Reloads run one at a time.
   */
  reload(trigger = "api"): Promise<ReloadResult> {
    this.reloading = this.reloading.then(() => this.doReload(trigger));
    return this.reloading;
  }

  private async doReload(trigger: string): Promise<ReloadResult> {
    const log = this.deps.logger;
    if (this.draining) return { ok: false, hash: null, errors: [SHUTTING_DOWN] };
    let plan: Plan | null = null;
    if (trigger !== "watch") await this.watcher?.remember();
    try {
      const loaded = await loadConfigFile(this.options.configFile, this.options.env ?? processEnv);
      const current = this.holder.current;
      if (
        loaded.hash === current?.hash && !await this.listenerFilesChanged(loaded) &&
        !await filesChanged(current.filesRead)
      ) {
        this.reloads.lastOk = true;
        return { ok: true, hash: loaded.hash, errors: [] };
      }
      plan = await buildPlan(loaded, this.deps);
      // A shutdown began while the plan built: it has closed the listeners, open none again.
      if (this.draining) {
        log.info("config reload dropped: the gateway is shutting down", { trigger });
        await plan.dispose();
        return { ok: false, hash: this.holder.current?.hash ?? null, errors: [SHUTTING_DOWN] };
      }
      await this.applyListeners(plan, loaded.source);
      this.holder.swap(plan);
      this.applyWatch(plan);
      this.reloads.ok++;
      this.reloads.lastOk = true;
      log.info("config reloaded", { trigger, config_hash: plan.hash, routes: plan.routes.length });
      return { ok: true, hash: plan.hash, errors: [] };
    } catch (e) {
      await plan?.dispose();
      this.reloads.failed++;
      this.reloads.lastOk = false;
      const errors = e instanceof ConfigError
        ? e.issues.map(formatIssue)
        : [String((e as Error)?.message ?? e)];
      log.error("config reload failed; the previous config keeps serving", {
        trigger,
        errors,
        ...(e instanceof ConfigError ? {} : errorFields(e)),
      });
      return { ok: false, hash: this.holder.current?.hash ?? null, errors };
    }
  }

  /** Opens, moves or closes the admin listener as `admin:` says (admin_listener.ts). */
  private async applyAdmin(c: GatewayConfig): Promise<void> {
    await this.adminSlot.apply(this.options.adminListener === false ? undefined : c.admin);
    this.admin.setToken(c.admin?.token);
  }

  private closeAdmin(): Promise<void> {
    return this.adminSlot.close();
  }

  /** Starts, restarts or stops watching the config file as the plan's `server.config_watch` says. */
  private applyWatch(plan: Plan): void {
    const w = plan.config.server.config_watch;
    this.watcher = rewatch(
      this.watcher,
      this.options.configFile,
      {
        enabled: w.enabled && this.options.configWatch !== false && !this.draining,
        debounceMs: w.debounce_ms,
      },
      () => void this.reload("watch"),
      this.deps.logger,
    );
  }

  /** Reopens access-log files (after log rotation moved them away); a failure is logged. */
  async reopenLogs(): Promise<void> {
    try {
      await this.deps.accessLogs.reopenAll();
      this.deps.logger.info("access logs reopened");
    } catch (e) {
      this.deps.logger.error(
        "cannot reopen the access log; writing on to the old file",
        errorFields(e),
      );
    }
  }

  /**
   * Opens listeners the plan adds or changes and closes those it drops; a
   * failure leaves the old set serving. New ports open before anything
   * closes; a listener that keeps its port is checked first (address, TLS
   * files), then swapped (listener_swap.ts). Old listeners drain in the
   * background: a reload does not wait for their requests.
   */
  private async applyListeners(plan: Plan, source?: YamlSource): Promise<void> {
    const c = plan.config;
    const resolvePath = resolverFor(plan.file);
    const wanted = new Map(c.listeners.map((l) => [l.name, l]));
    const changed: { index: number; config: ListenerConfig; key: string }[] = [];
    for (const [index, l] of c.listeners.entries()) {
      const key = await listenerIdentity(l, resolvePath);
      if (this.listeners.get(l.name)?.key !== key) changed.push({ index, config: l, key });
    }
    const opened: Opened[] = [];
    const failure = (index: number, e: unknown) => listenerError(plan.file, source, index, e);
    // The listener each replaces: its namesake, else (a rename, a port handed to a new name)
    // one the config drops that holds its port, which must let go of it first.
    const previous = (x: { config: ListenerConfig }): [string, OpenListener] | undefined => {
      const own = this.listeners.get(x.config.name);
      if (own || x.config.port === 0) return own && [x.config.name, own];
      for (const [name, l] of this.listeners) {
        if (!wanted.has(name) && l.running.port === x.config.port) return [name, l];
      }
      return undefined;
    };
    // Ports not in use by this gateway first, then the swaps that let go of a port.
    const samePort = (x: { config: ListenerConfig }) =>
      previous(x)?.[1].running.port === x.config.port;
    try {
      for (const x of changed) {
        if (samePort(x)) {
          await preflightListener(x.config, resolvePath).catch((e) => {
            throw failure(x.index, e);
          });
        }
      }
      for (const x of [...changed.filter((x) => !samePort(x)), ...changed.filter(samePort)]) {
        const [oldName, old] = previous(x) ?? [x.config.name, undefined];
        let swapped;
        try {
          swapped = await replaceListener(
            old?.running ?? null,
            x.config.port,
            // A listener that serves keeps its certificate rather than take an expired one.
            () => this.openListener(x.config, plan, old === undefined),
            () => this.openListener(old!.config, plan, true),
            this.options.reusePort === true && old?.config.host === x.config.host,
          );
        } catch (e) {
          if (e instanceof SwapFailed) this.retire(e.drained);
          if (e instanceof SwapFailed && old) {
            // Not reopened: no entry, so that the next reload opens it again.
            if (e.restored) this.listeners.set(oldName, { ...old, running: e.restored });
            else this.listeners.delete(oldName);
          }
          throw failure(x.index, e);
        }
        this.retire(swapped.drained);
        const entry = { key: x.key, config: x.config, running: swapped.running };
        this.listeners.delete(oldName);
        this.listeners.set(x.config.name, entry);
        opened.push({ name: x.config.name, entry, old, oldName });
      }
      await this.applyAdmin(c);
    } catch (e) {
      await this.restoreListeners(opened, plan);
      if (e instanceof ConfigError) throw e;
      throw new ConfigError([
        source?.issue(["admin"], `cannot open the admin listener: ${(e as Error).message}`) ??
          { file: plan.file, line: 0, col: 0, path: ["admin"], message: String(e) },
      ]);
    }
    for (const [name, { running }] of [...this.listeners]) {
      if (!wanted.has(name)) {
        this.listeners.delete(name);
        this.retire(running.shutdown());
      }
    }
  }

  /** Undoes the listener changes of a reload that failed, newest first. */
  private async restoreListeners(opened: Opened[], plan: Plan): Promise<void> {
    for (const { name, entry, old, oldName } of opened.reverse()) {
      if (!old) {
        this.listeners.delete(name);
        this.retire(entry.running.shutdown());
        continue;
      }
      try {
        const back = await replaceListener(
          entry.running,
          old.config.port,
          () => this.openListener(old.config, plan, true),
          () => this.openListener(entry.config, plan, true),
        );
        this.retire(back.drained);
        this.listeners.delete(name);
        this.listeners.set(oldName, { ...old, running: back.running });
      } catch (e) {
        this.deps.logger.error("cannot reopen a listener after a failed reload", {
          listener: name,
          ...errorFields(e),
        });
      }
    }
  }

  /** `serveExpired`: open with an expired certificate (logged) rather than refuse. */
  private openListener(
    l: ListenerConfig,
    plan: Plan,
    serveExpired: boolean,
  ): Promise<RunningListener> {
    const info = { name: l.name, tls: !!l.tls };
    const log = this.deps.logger;
    return startListener(l, createHandler(this.holder, info, this.deps), {
      ...(serveExpired
        ? { onExpiredCert: (message: string) => log.error(message, { listener: l.name }) }
        : {}),
      refused: createRefusalRecorder(this.holder, info, this.deps),
      resolvePath: resolverFor(plan.file),
      clock: this.deps.clock,
      ...(this.options.reusePort ? { reusePort: true } : {}),
      onError: (e) => this.deps.logger.error("listener error", errorFields(e)),
      maxConnections: () => this.listenerConfig(l.name, plan)?.max_connections ?? Infinity,
      onOverflow: () => {
        countFor(this.connectionsRefused, l.name);
        this.deps.logger.every(`max-connections:${l.name}`, 10_000, "warn", "connection refused", {
          listener: l.name,
          reason: "max_connections reached, no connection idle",
        });
      },
      onReclaim: () => {
        countFor(this.connectionsReclaimed, l.name);
        this.deps.logger.every(
          `max-connections-reclaim:${l.name}`,
          10_000,
          "info",
          "idle connection closed for a new one",
          { listener: l.name, reason: "max_connections reached" },
        );
      },
      proxyProtocol: this.proxyProtocolOptions(l.name, plan),
      timeouts: () => {
        const c = (this.holder.current ?? plan).config;
        return {
          headerMs: c.security.header_timeout_ms,
          idleMs: c.server.keepalive_timeout_s * 1000,
          sendMs: c.security.send_timeout_ms,
        };
      },
    });
  }

  /** Whether a TLS file of a running listener changed (a certificate renewed in place). */
  private async listenerFilesChanged(loaded: LoadedConfig): Promise<boolean> {
    const resolvePath = resolverFor(loaded.file);
    for (const l of loaded.config.listeners) {
      const open = this.listeners.get(l.name);
      if (l.tls && open && open.key !== await listenerIdentity(l, resolvePath)) return true;
    }
    return false;
  }

  /** A listener's settings in the config being served (that of `plan` until one is). */
  private listenerConfig(name: string, plan: Plan): ListenerConfig | undefined {
    return (this.holder.current ?? plan).config.listeners.find((l) => l.name === name);
  }

  private proxyProtocolOptions(listener: string, plan: Plan): ProxyProtocolOptions {
    return {
      trusted: () => (this.holder.current ?? plan).settings.trustedProxies,
      headerTimeoutMs: () =>
        this.listenerConfig(listener, plan)?.proxy_protocol_timeout_ms ?? PROXY_HEADER_TIMEOUT_MS,
      onRefused: (reason, peer) =>
        this.deps.logger.every(`proxy-protocol:${listener}`, 10_000, "warn", "connection refused", {
          listener,
          peer,
          reason,
        }),
    };
  }

  /**
   * Stops accepting, lets in-flight requests finish up to the drain deadline,
   * then releases everything. A second call returns the same drain: a second
   * signal must not let the process exit before it ends.
   */
  shutdown(): Promise<void> {
    return this.stopping ??= this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    this.watcher?.close();
    this.watcher = null;
    const delayMs = (this.holder.current?.config.server.drain_delay_s ?? 0) * 1000;
    if (delayMs > 0) {
      // /readyz is 503 from now: the listeners close once the balancer has stopped sending.
      this.holder.closeConnections = true;
      this.deps.logger.info("leaving: listeners serve on until the delay ends", {
        delay_ms: delayMs,
      });
      await new Promise((r) => setTimeout(r, delayMs));
    }
    const deadlineMs = (this.holder.current?.config.server.drain_timeout_s ?? 30) * 1000;
    this.deps.logger.info("draining", { deadline_ms: deadlineMs });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<true>((r) => (timer = setTimeout(() => r(true), deadlineMs)));
    const drained = Promise.all([this.closeListeners(), this.closeAfterReload()]);
    const timedOut = await Promise.race([drained.then(() => false), deadline]);
    if (timedOut) this.deps.logger.warn("drain deadline passed with requests still in flight");
    // Not waited for: a WebSocket lasts as long as its ends want. Ended now, it is recorded.
    await this.deps.upgrades.closeAll();
    // The admin listener answered /readyz throughout; its requests (a head still arriving
    // included) are waited for within the same deadline, not for as long as its own timeouts.
    await Promise.race([this.closeAdmin(), deadline]);
    clearTimeout(timer);
    await this.holder.disposeAll();
    await this.deps.accessLogs.closeAll();
    await this.deps.resilience.closeAll();
    this.deps.pools.closeAll();
    this.deps.redis.closeAll();
    this.deps.logger.info("stopped");
  }

  /** Closes the listeners and waits for their requests, and for those of listeners retired before. */
  private async closeListeners(): Promise<void> {
    const all = [...this.listeners.values()].map((l) => l.running.shutdown());
    this.listeners.clear();
    await Promise.all([...all, ...this.retiring]);
  }

  /** Waits for a reload that was running when the drain began, and closes what it opened. */
  private async closeAfterReload(): Promise<void> {
    await this.reloading;
    await this.closeListeners();
  }

  /** Keeps a replaced listener's drain until it ends, for a shutdown to wait for. */
  private retire(drained: Promise<void>): void {
    retire(this.retiring, drained);
  }
}

/** A listener this gateway runs, with what it was opened from. */
interface OpenListener {
  key: string;
  config: ListenerConfig;
  running: RunningListener;
}

/** A listener a reload opened, and the one it replaced (`oldName`: its name, another for a rename). */
interface Opened {
  name: string;
  entry: OpenListener;
  old: OpenListener | undefined;
  oldName: string;
}

function resolverFor(configFile: string): (p: string) => string {
  const base = dirname(configFile);
  return (p) => (p.startsWith("/") ? p : `${base}/${p}`);
}

/** A listener that would not open, at its place in the config file when known. */
function listenerError(
  file: string,
  source: YamlSource | undefined,
  index: number,
  e: unknown,
): ConfigError {
  const text = `cannot open listener: ${(e as Error)?.message ?? String(e)}`;
  // A certificate or key that does not load is pointed at where the file is named.
  const path = e instanceof TlsFileError
    ? ["listeners", index, "tls", e.field]
    : ["listeners", index];
  return new ConfigError([
    source?.issue(path, text) ?? { file, line: 0, col: 0, path, message: text },
  ]);
}

function hostForUrl(h: string): string {
  return h.includes(":") ? `[${h}]` : h;
}

export { json };

function countFor(counts: Map<string, number>, name: string): void {
  counts.set(name, (counts.get(name) ?? 0) + 1);
}
