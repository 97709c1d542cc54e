/**
 * How many isolates `run` serves with, and why: `--workers` wins over
 * `server.workers`, which wins over the default of one per core. The default
 * falls back to one isolate, with the reason, for a config that several
 * isolates cannot serve; an explicit count that cannot be served is an error.
 */
import type { GatewayConfig } from "../config/schema.ts";
import { ClusterStartError } from "./worker_handle.ts";

/** `--workers` as given: a count, `auto` (one per core, like the default), or absent. */
export type WorkersFlag = number | "auto" | null;

export interface WorkerCount {
  /** Isolates to run; 1 serves on the main thread, with no worker relay. */
  count: number;
  /** Why this count, as the startup log and `validate` print it. */
  why: string;
  /** The default asked for more isolates than the config allows. */
  fellBack: boolean;
}

/**
 * Why several isolates cannot share this config's listeners, or null.
 * Each worker binds every listener itself (SO_REUSEPORT), so each would get
 * its own random port where the config says port 0.
 */
export function sharedListenerProblem(config: GatewayConfig): string | null {
  const random = config.listeners.find((l) => l.port === 0);
  return random
    ? `listener "${random.name}" has port 0, which would give each worker a different random port`
    : null;
}

/** Throws `ClusterStartError` when an explicit count above 1 cannot be served. */
export function workerCount(
  flag: WorkersFlag,
  config: GatewayConfig,
  cores: number = navigator.hardwareConcurrency,
): WorkerCount {
  const explicit = typeof flag === "number"
    ? { count: flag, source: `--workers ${flag}` }
    : flag === null && config.server.workers !== undefined
    ? { count: config.server.workers, source: `server.workers: ${config.server.workers}` }
    : null;
  const problem = sharedListenerProblem(config);
  if (explicit) {
    if (explicit.count > 1 && problem) {
      throw new ClusterStartError([`${explicit.source} needs fixed listener ports: ${problem}`]);
    }
    return { count: explicit.count, why: explicit.source, fellBack: false };
  }
  const perCore = Math.max(1, cores);
  const why = flag === "auto" ? "one per core, --workers auto" : "one per core";
  if (perCore > 1 && problem) {
    return {
      count: 1,
      why: `${why} would be ${perCore}, but ${problem}; give it a fixed port to use every core`,
      fellBack: true,
    };
  }
  return { count: perCore, why, fellBack: false };
}
