/**
 * What stands between the balancer and one upstream target: its circuit
 * breaker, its outlier ejection record and its active health checker. Built per
 * plan from the registry, so the state itself survives reloads.
 */
import type { UpstreamConfig } from "../proxy/schema.ts";
import type { StoreConfig } from "../store/schema.ts";
import type { CircuitBreakerConfig } from "./schema.ts";
import type { RuntimeDeps } from "../plan/deps.ts";
import { breakerParams, CircuitBreaker, type CircuitState } from "./breaker.ts";
import { detectorSettings, type EjectionGate, OutlierDetector, outlierParams } from "./outlier.ts";
import { HealthChecker } from "./health.ts";
import { registryKey } from "./registry.ts";
import { connectionKey } from "../store/redis.ts";
import { SharedCircuits } from "./shared_circuits.ts";

/** Outcome of an exchange that never produced a response head (connect error, reset, timeout). */
export const NO_RESPONSE = 0;

export class TargetGuards {
  constructor(
    readonly breaker: CircuitBreaker | null,
    private readonly breakerFailures: ReadonlySet<number>,
    readonly outlier: OutlierDetector | null,
    readonly checker: HealthChecker | null,
    /** How long an unhealthy target stays out at least: until enough checks pass. */
    private readonly recheckMs: number,
    /** The upstream's cap on ejections at once; asked only when a failure streak completes. */
    private readonly ejectionGate: EjectionGate | null = null,
  ) {}

  /** Passing its health checks and not ejected. */
  healthy(now: number): boolean {
    return (this.checker === null || this.checker.healthy) &&
      (this.outlier === null || !this.outlier.ejected(now));
  }

  available(now: number): boolean {
    return this.healthy(now) && (this.breaker === null || this.breaker.allows(now));
  }

  circuit(now: number): CircuitState {
    return this.breaker?.state(now) ?? "closed";
  }

  /** Called as a request goes out; returns its half-open period when it is a probe, else 0. */
  admit(now: number): number {
    return this.breaker !== null && this.breaker.admit(now) ? this.breaker.period : 0;
  }

  /** Records how an exchange ended: a response status, or `NO_RESPONSE`. `probe` is `admit`'s. */
  settle(now: number, status: number, probe: number): void {
    const b = this.breaker;
    if (b !== null) {
      // A probe that outlived its period (a sibling's failure reopened the circuit, which then
      // half-opened again) is no probe of the current one: it neither closes nor reopens it.
      const current = probe !== 0 && probe === b.period;
      if (status === NO_RESPONSE || this.breakerFailures.has(status)) b.failure(now, current);
      else b.success(now, current);
    }
    if (this.outlier !== null) {
      if (status === NO_RESPONSE || status >= 500) this.outlier.failure(now, this.ejectionGate);
      else this.outlier.success();
    }
  }

  /** The exchange ended without telling anything about the target (the client left). */
  abandon(probe: number): void {
    const b = this.breaker;
    if (b !== null && probe !== 0) b.abandon(probe === b.period);
  }

  /** Whether only the circuit keeps the target out, and the least time until it may take requests. */
  blocked(now: number): { byCircuit: boolean; waitMs: number } {
    let waitMs = 0;
    if (this.checker !== null && !this.checker.healthy) waitMs = this.recheckMs;
    if (this.outlier !== null && this.outlier.ejected(now)) {
      waitMs = Math.max(waitMs, this.outlier.ejectedUntil - now);
    }
    const healthy = waitMs === 0;
    if (this.breaker !== null && !this.breaker.allows(now)) {
      waitMs = Math.max(waitMs, this.breaker.waitMs(now));
    }
    return { byCircuit: healthy && waitMs > 0, waitMs };
  }
}

export interface AcquiredGuards {
  guards: TargetGuards | null;
  release(): Promise<void>;
}

/** Takes the guards of one target from the registry, creating what is missing. */
export function acquireTargetGuards(
  deps: RuntimeDeps,
  store: StoreConfig,
  upstream: string,
  url: string,
  c: UpstreamConfig,
  ejectionGate: EjectionGate | null = null,
): AcquiredGuards {
  const scope = `${upstream}\n${url}`;
  const keys: string[] = [];
  const log = { upstream, target: url };
  const take = <T>(
    kind: string,
    settings: unknown,
    create: () => T,
    dispose?: (v: T) => unknown,
  ) => {
    const key = registryKey(kind, scope, settings);
    keys.push(key);
    return deps.resilience.acquire(key, create, dispose);
  };

  const cb = c.circuit_breaker;
  // A shared breaker is kept only with its Redis client: the old one closes with its plans.
  const sharedOn = cb?.shared && store.kind === "redis"
    ? [connectionKey(store.redis!), store.redis!.prefix]
    : null;
  const breaker = cb
    ? take(
      "breaker",
      sharedOn ? [cb, sharedOn] : cb,
      () => newBreaker(deps, store, log, cb),
      (e) => e.dispose(),
    ).breaker
    : null;

  const od = c.outlier_detection;
  const outlier = od
    ? take("outlier", detectorSettings(od), () => {
      const o = new OutlierDetector(outlierParams(od));
      o.onEject = (until, periodMs) =>
        deps.logger.warn("target ejected", {
          ...log,
          until: new Date(until).toISOString(),
          period_ms: periodMs,
        });
      return o;
    })
    : null;

  const hc = c.health_check;
  const checker = hc
    ? take("health", hc, () => {
      const h = new HealthChecker(url, hc, () => deps.clock.now(), (healthy, last) => {
        if (healthy) deps.logger.info("target healthy", log);
        else {
          deps.logger.warn("target unhealthy", { ...log, status: last.status, error: last.error });
        }
      });
      h.start();
      return h;
    }, (h) => h.stop())
    : null;

  const guards = breaker || outlier || checker
    ? new TargetGuards(
      breaker,
      new Set(cb?.failure_statuses ?? []),
      outlier,
      checker,
      hc ? hc.interval_s * 1000 * hc.healthy_threshold : 0,
      outlier === null ? null : ejectionGate,
    )
    : null;
  return {
    guards,
    release: async () => {
      for (const k of keys) await deps.resilience.release(k);
    },
  };
}

/** A breaker that logs its changes and, when configured, shares its openings through Redis. */
function newBreaker(
  deps: RuntimeDeps,
  store: StoreConfig,
  log: { upstream: string; target: string },
  cb: CircuitBreakerConfig,
): { breaker: CircuitBreaker; dispose(): Promise<void> } {
  const breaker = new CircuitBreaker(breakerParams(cb));
  const shared = cb.shared && store.kind === "redis" ? acquireShared(deps, store) : null;
  const sharedKey = `${store.redis?.prefix ?? ""}circuit:${log.upstream}|${log.target}`;
  shared?.sync.watch(sharedKey, breaker);
  breaker.onChange = (state, until, local) => {
    if (state === "open") {
      deps.logger.warn("circuit opened", {
        ...log,
        until: new Date(until).toISOString(),
        by: local ? "this instance" : "another instance",
      });
      if (local) shared?.sync.publish(sharedKey, until);
    } else deps.logger.info(`circuit ${state.replace("_", "-")}`, log);
  };
  return {
    breaker,
    async dispose() {
      shared?.sync.unwatch(sharedKey, breaker);
      await shared?.release();
    },
  };
}

function acquireShared(
  deps: RuntimeDeps,
  store: StoreConfig,
): { sync: SharedCircuits; release: () => Promise<void> } {
  const redis = store.redis!;
  const key = registryKey("shared-circuits", connectionKey(redis), redis.prefix);
  const sync = deps.resilience.acquire(
    key,
    () => new SharedCircuits(deps.redis.get(redis), redis.url, deps.redis, deps.clock),
    (s) => s.stop(),
  );
  return { sync, release: () => deps.resilience.release(key) };
}
