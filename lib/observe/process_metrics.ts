/**
 * Metrics of the whole OS process: CPU time, resident memory, start time.
 * Workers share one process, so a cluster reports these once, from the main
 * thread, and drops the workers' copies (each would count the whole process).
 */
import { cpuUsage } from "node:process";
import type { MetricsRegistry } from "./metrics/registry.ts";

/** Families that describe the process, not the isolate that reports them. */
export const PROCESS_WIDE_FAMILIES: ReadonlySet<string> = new Set([
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_start_time_seconds",
]);

export function registerProcessMetrics(m: MetricsRegistry): void {
  m.collect(
    "process_cpu_seconds_total",
    "User and system CPU time spent by the process",
    "counter",
    [],
    () => {
      const u = cpuUsage();
      return [[[], (u.user + u.system) / 1e6]];
    },
  );
  m.collect(
    "process_resident_memory_bytes",
    "Resident set size of the process",
    "gauge",
    [],
    () => [[[], Deno.memoryUsage().rss]],
  );
  m.collect(
    "process_start_time_seconds",
    "When the process started, in seconds since the Unix epoch",
    "gauge",
    [],
    // An isolate's time origin is its own start: only the main thread's is the process's.
    () => [[[], Math.floor(performance.timeOrigin / 1000)]],
  );
}
