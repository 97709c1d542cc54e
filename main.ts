/**
 * Gateway command line: `run` (default), `validate`, `version`, `help`.
 * The same entry point serves `deno run -A main.ts` and the compiled binary.
 */
import { parseArgs, USAGE, UsageError } from "./lib/cli/args.ts";
import { versionText } from "./lib/cli/version.ts";
import { loadConfigFile } from "./lib/config/load.ts";
import { ConfigError, formatIssue } from "./lib/config/issues.ts";
import { Gateway } from "./lib/server/gateway.ts";
import { JsonLogger } from "./lib/observe/logger.ts";

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
      return await run(args.config, args.logLevel);
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

async function run(file: string, level: "debug" | "info" | "warn" | "error"): Promise<number> {
  const logger = new JsonLogger(level);
  let gw: Gateway;
  try {
    gw = await Gateway.start({ configFile: file, logger });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const issue of e.issues) console.error(formatIssue(issue));
    console.error(`${file}: not started, ${e.issues.length} error(s)`);
    return 1;
  }
  const stopped = Promise.withResolvers<void>();
  const stop = () => gw.shutdown().then(stopped.resolve);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGHUP", () => void gw.reload("SIGHUP"));
  Deno.addSignalListener("SIGUSR1", () => void gw.reopenLogs());
  await stopped.promise;
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
