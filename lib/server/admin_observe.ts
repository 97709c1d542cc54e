/**
 * Admin endpoints for observing the gateway: `/metrics` (Prometheus) and
 * `/config` (the effective config, secrets masked), and the gauges read at
 * scrape time from state that lives elsewhere (targets, the store, reloads).
 */
import { registerTokenCacheGauges } from "../auth/cache_metrics.ts";
import type { Gateway } from "./gateway.ts";
import { json } from "./admin.ts";
import { CONTENT_TYPE } from "../observe/metrics/exposition.ts";
import type { MetricsRegistry, Sample } from "../observe/metrics/registry.ts";
import { redactConfig } from "../observe/redact_config.ts";
import { registerProcessMetrics } from "../observe/process_metrics.ts";
import { VERSION } from "../cli/version.ts";

const CIRCUIT_STATES = ["closed", "open", "half_open"] as const;

export function registerObserveAdmin(gw: Gateway): void {
  registerCollectors(gw);
  gw.admin.add(
    "GET",
    "/metrics",
    () =>
      new Response(gw.deps.metrics.render(), {
        headers: { "content-type": CONTENT_TYPE, "cache-control": "no-store" },
      }),
    { whileStarting: true },
  );
  gw.admin.add("GET", "/config", () => {
    const plan = gw.plan;
    return json({
      file: plan.file,
      hash: plan.hash,
      config: redactConfig(plan.config, plan.settings.observer.interpolated),
    });
  });
}

function registerCollectors(gw: Gateway): void {
  const m: MetricsRegistry = gw.deps.metrics;
  registerTokenCacheGauges(m, () => []);
  // A URL listed twice in one upstream shares its pool and guards: one series, not a duplicate.
  const targets = function* () {
    const plan = gw.holder.current;
    if (plan === null) return;
    for (const u of plan.upstreams.values()) {
      const seen = new Set<string>();
      for (const t of u.targets) {
        if (seen.has(t.id)) continue;
        seen.add(t.id);
        yield { upstream: u.name, target: t };
      }
    }
  };
  m.collect(
    "gateway_upstream_target_healthy",
    "Whether the target is taking traffic (1) or was taken out by health checks (0)",
    "gauge",
    ["upstream", "target"],
    function* () {
      for (const { upstream, target } of targets()) {
        yield [[upstream, target.id], target.healthy ? 1 : 0];
      }
    },
  );
  m.collect(
    "gateway_upstream_target_circuit_state",
    "Circuit breaker state per target: 1 for the current state (closed, open, half_open)",
    "gauge",
    ["upstream", "target", "state"],
    function* () {
      for (const { upstream, target } of targets()) {
        for (const s of CIRCUIT_STATES) {
          yield [[upstream, target.id, s], target.circuit === s ? 1 : 0];
        }
      }
    },
  );
  m.collect(
    "gateway_upstream_connections",
    "Pooled connections to each target: in use (active) or parked for reuse (idle)",
    "gauge",
    ["upstream", "target", "state"],
    function* () {
      for (const { upstream, target } of targets()) {
        yield [[upstream, target.id, "active"], target.pool.active];
        yield [[upstream, target.id, "idle"], target.pool.idleCount];
      }
    },
  );
  m.collect(
    "gateway_store_errors_total",
    "Shared-store commands that failed (timeouts, lost connections)",
    "counter",
    ["store"],
    () => [[["redis"], gw.deps.redis.errors]],
  );
  m.collect(
    "gateway_config_reloads_total",
    "Config reloads that swapped in a new plan (success) or kept the old one (failure)",
    "counter",
    ["result"],
    () => [[["success"], gw.reloads.ok], [["failure"], gw.reloads.failed]],
  );
  m.collect(
    "gateway_config_last_reload_successful",
    "Whether the last reload attempt succeeded (1) or left the previous config serving (0)",
    "gauge",
    [],
    () => [[[], gw.reloads.lastOk ? 1 : 0]],
  );
  m.collect(
    "gateway_config_info",
    "The config being served, by the SHA-256 of its file",
    "gauge",
    ["hash"],
    (): Sample[] => {
      const plan = gw.holder.current;
      return plan === null ? [] : [[[plan.hash], 1]];
    },
  );
  m.collect(
    "gateway_listener_connections_refused_total",
    "Client connections a listener closed as soon as it accepted them: it held max_connections, none idle",
    "counter",
    ["listener"],
    (): Sample[] => [...gw.connectionsRefused].map(([listener, n]) => [[listener], n]),
  );
  m.collect(
    "gateway_listener_connections_reclaimed_total",
    "Idle client connections a listener closed to serve a new one, because it held max_connections",
    "counter",
    ["listener"],
    (): Sample[] => [...gw.connectionsReclaimed].map(([listener, n]) => [[listener], n]),
  );
  m.collect(
    "gateway_access_log_dropped_lines_total",
    "Access-log lines dropped because the destination fell behind or failed",
    "counter",
    [],
    () => [[[], gw.deps.accessLogs.dropped]],
  );
  m.collect(
    "gateway_build_info",
    "Gateway and Deno versions",
    "gauge",
    ["version", "deno"],
    () => [[[VERSION, Deno.version.deno], 1]],
  );
  registerProcessMetrics(m);
  m.collect(
    "process_heap_bytes",
    "JavaScript heap in use",
    "gauge",
    [],
    () => [[[], Deno.memoryUsage().heapUsed]],
  );
}
