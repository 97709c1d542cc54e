/**
 * Families only the main thread of `--workers N` reports: what it knows of the
 * workers themselves. Like the process-wide families (`process_metrics.ts`),
 * they are rendered once per scrape, beside the workers' merged samples.
 */
import type { MetricsRegistry } from "../observe/metrics/registry.ts";

/** Families no worker reports: a single gateway's `/metrics` has none of them. */
export const CLUSTER_FAMILIES: ReadonlySet<string> = new Set([
  "gateway_worker_unresponsive",
]);

/** Whether each worker asked for this scrape answered it within the bound. */
export interface ScrapedWorker {
  worker: number;
  unresponsive: boolean;
}

export function registerClusterMetrics(
  m: MetricsRegistry,
  scraped: () => Iterable<ScrapedWorker>,
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
}
