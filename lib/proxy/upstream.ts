/**
 * An upstream at run time: its targets with their connection pools and
 * resilience guards, the balancer, the effective timeouts, the retry policy and
 * budget, and the bulkhead. Built once per plan.
 */
import type { UpstreamConfig } from "./schema.ts";
import type { TargetPool } from "./http1/pool.ts";
import type { StoreConfig } from "../store/schema.ts";
import type { RuntimeDeps } from "../plan/deps.ts";
import type { Clock } from "../core/clock.ts";
import {
  type Balanced,
  type Balancer,
  hash,
  leastConn,
  random,
  roundRobin,
} from "../resilience/balance.ts";
import type { CircuitState } from "../resilience/breaker.ts";
import { acquireTargetGuards, type TargetGuards } from "../resilience/guards.ts";
import { Bulkhead } from "../resilience/bulkhead.ts";
import { EjectionCap } from "../resilience/outlier.ts";
import { budgetParams, RetryBudget, RetryPolicy } from "../resilience/retry.ts";
import { registryKey } from "../resilience/registry.ts";
import { compileRequestKey, type RequestKey } from "../core/request_key.ts";
import { textHeaderValue } from "./header_edits.ts";
import { NameSet } from "../core/name_set.ts";

export type { CircuitState };

export interface Timeouts {
  connectMs: number;
  firstByteMs: number;
  requestMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 5_000,
  firstByteMs: 60_000,
  requestMs: Infinity,
};

export class UpstreamTarget implements Balanced {
  constructor(
    readonly id: string,
    readonly pool: TargetPool,
    readonly weight: number,
    /** Breaker, ejection and health checks; null when the upstream configures none. */
    readonly guards: TargetGuards | null,
    private readonly clock: Clock,
  ) {}

  get inFlight(): number {
    return this.pool.active;
  }

  /** Passing health checks and not ejected; read by the balancer, `/upstreams` and metrics. */
  get healthy(): boolean {
    return this.guards === null || this.guards.healthy(this.clock.now());
  }

  /** Circuit breaker state; read by `/upstreams` and metrics. */
  get circuit(): CircuitState {
    return this.guards === null ? "closed" : this.guards.circuit(this.clock.now());
  }

  /** Whether the balancer may send here: healthy, not ejected, circuit not open. */
  available(now: number): boolean {
    return this.guards === null || this.guards.available(now);
  }
}

export class Upstream {
  readonly targets: UpstreamTarget[];
  readonly balancer: Balancer<UpstreamTarget>;
  readonly timeouts: Timeouts;
  readonly hashKey: RequestKey | null;
  /** Static header lines configured on the upstream. */
  readonly extraBlock: string;
  /** Their lower-case names, or null when there are none. */
  readonly extraNames: NameSet | null;
  /** The upstream's retry policy; a route may set its own. */
  readonly retry: RetryPolicy | null;
  /** Retries left to this upstream, shared by every route that sends here. */
  readonly budget: RetryBudget;
  readonly bulkhead: Bulkhead | null;
  /** How many targets passive ejection may hold out at once; null without outlier_detection. */
  readonly ejectionCap: EjectionCap | null;
  readonly clock: Clock;
  private readonly releases: (() => Promise<void>)[] = [];

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
    private readonly deps: RuntimeDeps,
    store: StoreConfig,
  ) {
    this.clock = deps.clock;
    const od = config.outlier_detection;
    const cap = od === undefined ? null : new EjectionCap(
      od.max_ejection_percent,
      (target, ejected, maxEjected) =>
        deps.logger.every(`ejection-refused:${name}`, 10_000, "warn", "target ejection refused", {
          upstream: name,
          target,
          ejected,
          max_ejected: maxEjected,
          max_ejection_percent: od.max_ejection_percent,
          ejections_refused: cap!.refusedTotal,
        }),
    );
    this.ejectionCap = cap;
    this.targets = config.targets.map((t) => {
      const acquired = acquireTargetGuards(deps, store, name, t.url, config, cap);
      this.releases.push(acquired.release);
      const outlier = acquired.guards?.outlier;
      if (cap !== null && outlier && t.weight > 0) cap.add(outlier, t.url);
      return new UpstreamTarget(
        t.url,
        deps.pools.acquire(t.url, {
          maxIdle: config.keepalive.max_idle,
          idleTimeoutMs: config.keepalive.idle_timeout_s * 1000,
        }),
        t.weight,
        acquired.guards,
        deps.clock,
      );
    });
    // The records outlive plans: this plan's pool or cap may be smaller than what they hold out.
    for (const d of cap?.enforce(deps.clock.now()) ?? []) {
      deps.logger.info("target readmitted", {
        upstream: name,
        target: cap!.id(d),
        reason: "max_ejection_percent",
      });
    }
    this.balancer = makeBalancer(config, this.targets);
    this.hashKey = config.balance === "hash" ? compileRequestKey(config.hash_on) : null;
    this.timeouts = {
      connectMs: config.timeout.connect_ms ?? DEFAULT_TIMEOUTS.connectMs,
      firstByteMs: config.timeout.first_byte_ms ?? DEFAULT_TIMEOUTS.firstByteMs,
      requestMs: config.timeout.request_ms ?? DEFAULT_TIMEOUTS.requestMs,
    };
    // Config text, so UTF-8 whatever its characters, as consumers' headers and transforms send it.
    this.extraBlock = Object.entries(config.headers)
      .map(([k, v]) => `${k.toLowerCase()}: ${textHeaderValue(v)}\r\n`).join("");
    const names = Object.keys(config.headers).map((k) => k.toLowerCase());
    this.extraNames = names.length === 0 ? null : new NameSet(names);
    this.retry = config.retries ? new RetryPolicy(config.retries) : null;
    const budget = budgetParams(config.retries);
    this.budget = this.shared("budget", budget, () => new RetryBudget(budget));
    const b = config.max_concurrent === undefined ? null : {
      maxConcurrent: config.max_concurrent,
      queue: config.queue,
      queueTimeoutMs: config.queue_timeout_ms,
    };
    this.bulkhead = b === null ? null : this.shared("bulkhead", b, () => new Bulkhead(b));
  }

  /** Whether some target may take a request now. */
  anyAvailable(now: number): boolean {
    for (const t of this.targets) if (t.weight > 0 && t.available(now)) return true;
    return false;
  }

  /**
   * Why no target can take a request now: every one is held back by its circuit
   * (`circuit_open`) or some are unhealthy or ejected; and the least wait.
   */
  unavailable(now: number): { code: "circuit_open" | "no_healthy_upstream"; waitMs: number } {
    let open = 0;
    let guarded = 0;
    let waitMs = Infinity;
    for (const t of this.targets) {
      if (t.weight === 0 || t.guards === null) continue;
      const b = t.guards.blocked(now);
      guarded++;
      if (b.byCircuit) open++;
      waitMs = Math.min(waitMs, b.waitMs);
    }
    const code = guarded > 0 && open === guarded ? "circuit_open" : "no_healthy_upstream";
    return { code, waitMs };
  }

  async dispose(): Promise<void> {
    for (const t of this.targets) this.deps.pools.release(t.pool);
    for (const release of this.releases) await release();
  }

  /** An upstream-wide object from the registry, kept across reloads while `settings` hold. */
  private shared<T>(kind: string, settings: unknown, create: () => T): T {
    const key = registryKey(kind, this.name, settings);
    this.releases.push(() => this.deps.resilience.release(key));
    return this.deps.resilience.acquire(key, create);
  }
}

function makeBalancer(c: UpstreamConfig, targets: UpstreamTarget[]): Balancer<UpstreamTarget> {
  switch (c.balance) {
    case "least_conn":
      return leastConn(targets);
    case "random":
      return random(targets);
    case "hash":
      return hash(targets, roundRobin(targets));
    default:
      return roundRobin(targets);
  }
}
