/**
 * Families only the main thread of `--workers N` reports: what it knows of the
 * workers themselves. Like the process-wide families (`process_metrics.ts`),
 * they are rendered once per scrape, beside the workers' merged samples.
 */
import type { MetricsRegistry } from "../observe/metrics/registry.ts";
import type { WorkerSilence } from "./watchdog.ts";

/** Families no worker reports: a single gateway's `/metrics` has none of them. */
export const CLUSTER_FAMILIES: ReadonlySet<string> = new Set([
  "gateway_worker_unresponsive",
  "gateway_worker_silent_seconds",
  "gateway_worker_restarts_total",
]);

/** Whether each worker asked for this scrape answered it within the bound. */
export interface ScrapedWorker {
  worker: number;
  unresponsive: boolean;
}

/** Why the main thread replaced a worker. */
export type RestartReason = "crash" | "unresponsive";

export const RESTART_REASONS: readonly RestartReason[] = ["crash", "unresponsive"];

/** Restarts of one worker index for one reason, since the process started. */
export interface WorkerRestarts {
  worker: number;
  reason: RestartReason;
  count: number;
}

/** What the main thread knows of its workers apart from a scrape (`Cluster`). */
export interface WorkerHealth {
  /** Every worker index and reason, 0 included, so that `rate()` sees the first restart. */
  restarts(): Iterable<WorkerRestarts>;
  /** The watchdog's view of each serving worker. */
  silences(): Iterable<WorkerSilence>;
}

export function registerClusterMetrics(
  m: MetricsRegistry,
  scraped: () => Iterable<ScrapedWorker>,
  health?: WorkerHealth,
): void {
  m.collect(
    "gateway_worker_unresponsive",
    "Whether the worker did not answer this scrape in time (1: its samples are left out) or did (0)",
    "gauge",
    ["worker"],
    function* () {
      for (const w of scraped()) yield [[String(w.worker)], w.unresponsive ? 1 : 0];
    },
  );
  if (!health) return;
  m.collect(
    "gateway_worker_silent_seconds",
    "How long the worker has not answered the watchdog's ping (0: it answered the last one)",
    "gauge",
    ["worker"],
    function* () {
      for (const s of health.silences()) yield [[String(s.worker)], s.silentMs / 1000];
    },
  );
  m.collect(
    "gateway_worker_restarts_total",
    "Workers the main thread replaced: after an uncaught error (crash) or silence past server.watchdog.kill_after_s (unresponsive)",
    "counter",
    ["worker", "reason"],
    function* () {
      for (const r of health.restarts()) yield [[String(r.worker), r.reason], r.count];
    },
  );
}
