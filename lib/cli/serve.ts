/**
 * What `gateway run` starts: one gateway on the main thread, or a cluster of
 * worker isolates sharing the ports, as many as `workerCount` decides.
 * `deno task start` starts the gateway the same way.
 */
import { loadConfigFile } from "../config/load.ts";
import type { Level, Logger } from "../observe/logger.ts";
import { Gateway } from "../server/gateway.ts";
import { Cluster } from "../cluster/cluster.ts";
import { type WorkerCount, workerCount, type WorkersFlag } from "../cluster/worker_count.ts";

export type Server = Gateway | Cluster;

export interface ServeOptions {
  configFile: string;
  workers: WorkersFlag;
  logLevel: Level;
  logger: Logger;
  /** The module of each worker isolate (`ClusterOptions.workerEntry`); tests replace it. */
  workerEntry?: URL;
}

/**
 * Starts serving; logs how many isolates run and why (a warning when the
 * default had to fall back to one). Throws `ConfigError` or `ClusterStartError`.
 */
export async function serve(o: ServeOptions): Promise<{ server: Server; workers: WorkerCount }> {
  const workers = workerCount(o.workers, (await loadConfigFile(o.configFile)).config);
  o.logger.log(workers.fellBack ? "warn" : "info", "workers", {
    workers: workers.count,
    why: workers.why,
  });
  const server = workers.count > 1
    ? await Cluster.start({
      configFile: o.configFile,
      workers: workers.count,
      logLevel: o.logLevel,
      logger: o.logger,
      workerEntry: o.workerEntry,
    })
    : await Gateway.start({ configFile: o.configFile, logger: o.logger });
  return { server, workers };
}
