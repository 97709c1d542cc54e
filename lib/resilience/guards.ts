/**
 * What stands between the balancer and one upstream target: its circuit
 * breaker, its outlier ejection record and its active health checker. Built per
 * plan from the registry, so the state itself survives reloads.
 */
import type { UpstreamConfig } from "../proxy/schema.ts";
import type { StoreConfig } from "../store/schema.ts";
import type { RuntimeDeps } from "../plan/deps.ts";
import { breakerParams, CircuitBreaker, type CircuitState } from "./breaker.ts";
import { OutlierDetector, outlierParams } from "./outlier.ts";
import { HealthChecker } from "./health.ts";
import { registryKey } from "./registry.ts";
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

  /** Called as a request goes out; returns whether it is a half-open probe. */
  admit(now: number): boolean {
    return this.breaker !== null && this.breaker.admit(now);
  }

  /** Records how an exchange ended: a response status, or `NO_RESPONSE`. */
  settle(now: number, status: number, probe: boolean): void {
    if (this.breaker !== null) {
      if (status === NO_RESPONSE || this.breakerFailures.has(status)) {
        this.breaker.failure(now, probe);
      } else this.breaker.success(now, probe);
    }
    if (this.outlier !== null) {
      if (status === NO_RESPONSE || status >= 500) this.outlier.failure(now);
      else this.outlier.success();
    }
  }

  /** The exchange ended without telling anything about the target (the client left). */
  abandon(probe: boolean): void {
    this.breaker?.abandon(probe);
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
): AcquiredGuards {
  const registry = deps.resilience;
  const scope = `${upstream}\n${url}`;
  const keys: string[] = [];
  const log = { upstream, target: url };

  let breaker: CircuitBreaker | null = null;
  const cb = c.circuit_breaker;
  if (cb) {
    const key = registryKey("breaker", scope, cb);
    keys.push(key);
    breaker = registry.acquire(key, () => {
      const b = new CircuitBreaker(breakerParams(cb));
      const shared = cb.shared && store.kind === "redis" ? acquireShared(deps, store) : null;
      const sharedKey = `${store.redis?.prefix ?? ""}circuit:${upstream}|${url}`;
      shared?.sync.watch(sharedKey, b);
      b.onChange = (state, until, local) => {
        if (state === "open") {
          deps.logger.warn("circuit opened", {
            ...log,
            until: new Date(until).toISOString(),
            by: local ? "this instance" : "another instance",
          });
          if (local) shared?.sync.publish(sharedKey, until);
        } else deps.logger.info(`circuit ${state.replace("_", "-")}`, log);
      };
      return { b, shared, sharedKey };
    }, async ({ shared, sharedKey }) => {
      shared?.sync.unwatch(sharedKey);
      await shared?.release();
    }).b;
  }

  let outlier: OutlierDetector | null = null;
  const od = c.outlier_detection;
  if (od) {
    const key = registryKey("outlier", scope, od);
    keys.push(key);
    outlier = registry.acquire(key, () => {
      const o = new OutlierDetector(outlierParams(od));
      o.onEject = (until, periodMs) =>
        deps.logger.warn("target ejected", {
          ...log,
          until: new Date(until).toISOString(),
          period_ms: periodMs,
        });
      return o;
    });
  }

  let checker: HealthChecker | null = null;
  const hc = c.health_check;
  if (hc) {
    const key = registryKey("health", scope, hc);
    keys.push(key);
    checker = registry.acquire(key, () => {
      const h = new HealthChecker(url, hc, () => deps.clock.now(), (healthy, last) => {
        if (healthy) deps.logger.info("target healthy", log);
        else {
          deps.logger.warn("target unhealthy", { ...log, status: last.status, error: last.error });
        }
      });
      h.start();
      return h;
    }, (h) => h.stop());
  }

  const guards = breaker || outlier || checker
    ? new TargetGuards(
      breaker,
      new Set(cb?.failure_statuses ?? []),
      outlier,
      checker,
      hc ? hc.interval_s * 1000 * hc.healthy_threshold : 0,
    )
    : null;
  return {
    guards,
    release: async () => {
      for (const k of keys) await registry.release(k);
    },
  };
}

function acquireShared(
  deps: RuntimeDeps,
  store: StoreConfig,
): { sync: SharedCircuits; release: () => Promise<void> } {
  const redis = store.redis!;
  const key = registryKey("shared-circuits", redis.url, redis.prefix);
  const sync = deps.resilience.acquire(
    key,
    () => new SharedCircuits(deps.redis.get(redis), redis.url, deps.redis, deps.clock),
    (s) => s.stop(),
  );
  return { sync, release: () => deps.resilience.release(key) };
}
