/**
 * Gateway command line: `run` (default), `validate`, `version`, `help`.
 * The same entry point serves `deno run -A main.ts` and the compiled binary.
 */
import { parseArgs, USAGE, UsageError } from "./lib/cli/args.ts";
import { versionText } from "./lib/cli/version.ts";
import { loadConfigFile } from "./lib/config/load.ts";
import { ConfigError, formatIssue } from "./lib/config/issues.ts";
import { JsonLogger, type Level } from "./lib/observe/logger.ts";
import { ClusterStartError } from "./lib/cluster/worker_handle.ts";
import { Cluster, EXIT_FOR_RESTART } from "./lib/cluster/cluster.ts";
import { workerCount, type WorkersFlag } from "./lib/cluster/worker_count.ts";
import { serve, type Server } from "./lib/cli/serve.ts";

export async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  switch (args.command) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(versionText());
      return 0;
    case "validate":
      return await validate(args.config, args.workers);
    case "run":
      return await run(args.config, args.logLevel, args.workers);
  }
}

/** Checks the config and how many workers `run` would start on this machine. */
async function validate(file: string, workersFlag: WorkersFlag): Promise<number> {
  try {
    const { config } = await loadConfigFile(file);
    const workers = workerCount(workersFlag, config);
    console.log(
      `${file}: OK (${config.listeners.length} listener(s), ${
        Object.keys(config.upstreams).length
      } upstream(s), ${config.routes.length} route(s))\nworkers: ${workers.count} (${workers.why})`,
    );
    return 0;
  } catch (e) {
    const errors = startErrors(e);
    for (const line of errors) console.error(line);
    console.error(`${file}: ${errors.length} error(s)`);
    return 1;
  }
}

async function run(file: string, level: Level, workersFlag: WorkersFlag): Promise<number> {
  const logger = new JsonLogger(level);
  const starting = serve({ configFile: file, workers: workersFlag, logLevel: level, logger });
  const stopped = handleSignals(starting.then((s) => s.server, () => null));
  let server: Server;
  try {
    server = (await starting).server;
  } catch (e) {
    const errors = startErrors(e);
    for (const line of errors) console.error(line);
    console.error(`${file}: not started, ${errors.length} error(s)`);
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
function startErrors(e: unknown): string[] {
  if (e instanceof ConfigError) return e.issues.map(formatIssue);
  if (e instanceof ClusterStartError) return e.errors;
  throw e;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
