/**
 * `gateway run`: serves until a stop signal (exit 0), or until a cluster's
 * watchdog could not stop a stuck worker (exit `EXIT_FOR_RESTART`). main.ts
 * runs it; a test launcher runs the same code with its own worker module.
 */
import { ConfigError, formatIssue } from "../config/issues.ts";
import { JsonLogger, type Level } from "../observe/logger.ts";
import { ClusterStartError } from "../cluster/worker_handle.ts";
import { Cluster, EXIT_FOR_RESTART } from "../cluster/cluster.ts";
import type { WorkersFlag } from "../cluster/worker_count.ts";
import { serve, type Server } from "./serve.ts";

export interface RunOptions {
  configFile: string;
  logLevel: Level;
  workers: WorkersFlag;
  /** The module of each worker isolate (`ServeOptions.workerEntry`); tests replace it. */
  workerEntry?: URL;
}

/** Serves until stopped; resolves with the process's exit code (0, 1 not started, or 70). */
export async function runGateway(o: RunOptions): Promise<number> {
  const logger = new JsonLogger(o.logLevel);
  const starting = serve({
    configFile: o.configFile,
    workers: o.workers,
    logLevel: o.logLevel,
    logger,
    workerEntry: o.workerEntry,
  });
  const stopped = handleSignals(starting.then((s) => s.server, () => null));
  let server: Server;
  try {
    server = (await starting).server;
  } catch (e) {
    const errors = startErrors(e);
    for (const line of errors) console.error(line);
    console.error(`${o.configFile}: not started, ${errors.length} error(s)`);
    return 1;
  }
  // A cluster whose watchdog could not stop a stuck worker drains and exits for its supervisor.
  const restart = server instanceof Cluster
    ? server.processRestartWanted
    : new Promise<never>(() => {});
  return await Promise.race([
    stopped.then(() => 0),
    restart.then(() => server.shutdown()).then(() => EXIT_FOR_RESTART),
  ]);
}

/**
 * Installs the signal handlers before the first plan is built, so that a
 * SIGTERM during a slow start stops the gateway (as soon as it is up, with the
 * usual drain) instead of killing it; SIGHUP and SIGUSR1 wait for it too.
 * Resolves once the gateway has stopped.
 */
function handleSignals(server: Promise<Server | null>): Promise<void> {
  const stopped = Promise.withResolvers<void>();
  const onceUp = (act: (s: Server) => Promise<unknown>) => () =>
    void server.then((s) => s && act(s));
  const stop = onceUp((s) => s.shutdown().then(stopped.resolve));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGHUP", onceUp((s) => s.reload("SIGHUP")));
  Deno.addSignalListener("SIGUSR1", onceUp((s) => s.reopenLogs()));
  return stopped.promise;
}

/** The lines to print for a config or worker-count error; anything else is a bug and rethrown. */
export function startErrors(e: unknown): string[] {
  if (e instanceof ConfigError) return e.issues.map(formatIssue);
  if (e instanceof ClusterStartError) return e.errors;
  throw e;
}
