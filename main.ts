/**
 * Gateway command line: `run` (default), `validate`, `version`, `help`.
 * The same entry point serves `deno run -A main.ts` and the compiled binary.
 */
import { parseArgs, USAGE, UsageError } from "./lib/cli/args.ts";
import { versionText } from "./lib/cli/version.ts";
import { loadConfigFile } from "./lib/config/load.ts";
import { workerCount, type WorkersFlag } from "./lib/cluster/worker_count.ts";
import { runGateway, startErrors } from "./lib/cli/run.ts";

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
      return await runGateway({
        configFile: args.config,
        logLevel: args.logLevel,
        workers: args.workers,
      });
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

if (import.meta.main) Deno.exit(await main(Deno.args));
