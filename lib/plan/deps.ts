/**
 * Long-lived parts of the running gateway that plans use but do not own: they
 * survive reloads, so connection pools stay warm and counters carry over.
 */
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../observe/logger.ts";
import type { PoolRegistry } from "../proxy/pools.ts";
import type { RedisConnections } from "../store/redis.ts";
import type { MetricsRegistry } from "../observe/metrics/registry.ts";
import type { LogSinks } from "../observe/log_sink.ts";
import type { ResilienceRegistry } from "../resilience/registry.ts";
import type { CacheStores } from "../cache/stores.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { LocalLimiterStore } from "../store/limiter_store.ts";
import type { OpenUpgrades } from "../proxy/open_upgrades.ts";

export interface RuntimeDeps {
  clock: Clock;
  logger: Logger;
  pools: PoolRegistry;
  /** Shared Redis clients (created on first use by whatever needs the store). */
  redis: RedisConnections;
  /** Prometheus registry; any module may register families on it. */
  metrics: MetricsRegistry;
  /** Access-log destinations, shared by the plans that write to them. */
  accessLogs: LogSinks;
  /** Breakers, health checkers, bulkheads and retry budgets, kept across reloads. */
  resilience: ResilienceRegistry;
  /** Response caches (the memory one and Redis ones in use), kept across reloads. */
  caches: CacheStores;
  /**
   * With `store.kind: memory`, runtime keys and revocations live here instead of
   * in a store of this isolate's own: how `--workers N` shares them (lib/cluster).
   */
  localCredentials?: CredentialStore;
  /** Rate-limit state of `store.kind: memory`, kept across reloads. */
  localLimiter: LocalLimiterStore;
  /** Open WebSocket sessions, ended at shutdown. */
  upgrades: OpenUpgrades;
}
