/**
 * Gateway command line: `run` (default), `validate`, `version`, `help`.
 * The same entry point serves `deno run -A main.ts` and the compiled binary.
 */
import { parseArgs, USAGE, UsageError } from "./lib/cli/args.ts";
import { versionText } from "./lib/cli/version.ts";
import { loadConfigFile } from "./lib/config/load.ts";
import { ConfigError, formatIssue } from "./lib/config/issues.ts";
import { Gateway } from "./lib/server/gateway.ts";
import { JsonLogger, type Level } from "./lib/observe/logger.ts";
import { Cluster } from "./lib/cluster/cluster.ts";
import { ClusterStartError } from "./lib/cluster/worker_handle.ts";

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
      return await validate(args.config);
    case "run":
      return await run(args.config, args.logLevel, args.workers);
  }
}

async function validate(file: string): Promise<number> {
  try {
    const { config } = await loadConfigFile(file);
    console.log(
      `${file}: OK (${config.listeners.length} listener(s), ${
        Object.keys(config.upstreams).length
      } upstream(s), ${config.routes.length} route(s))`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const issue of e.issues) console.error(formatIssue(issue));
    console.error(`${file}: ${e.issues.length} error(s)`);
    return 1;
  }
}

async function run(file: string, level: Level, workersFlag: number | null): Promise<number> {
  const logger = new JsonLogger(level);
  let server: Gateway | Cluster;
  try {
    const workers = workersFlag ?? (await loadConfigFile(file)).config.server.workers ?? 1;
    server = workers > 1
      ? await Cluster.start({ configFile: file, workers, logLevel: level, logger })
      : await Gateway.start({ configFile: file, logger });
  } catch (e) {
    const errors = e instanceof ConfigError
      ? e.issues.map(formatIssue)
      : e instanceof ClusterStartError
      ? e.errors
      : null;
    if (!errors) throw e;
    for (const line of errors) console.error(line);
    console.error(`${file}: not started, ${errors.length} error(s)`);
    return 1;
  }
  const stopped = Promise.withResolvers<void>();
  const stop = () => server.shutdown().then(stopped.resolve);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGHUP", () => void server.reload("SIGHUP"));
  Deno.addSignalListener("SIGUSR1", () => void server.reopenLogs());
  await stopped.promise;
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
