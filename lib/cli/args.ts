/** Command-line parsing: `gateway [run|validate|version|help] [--config FILE] [flags]`. */
import type { WorkersFlag } from "../cluster/worker_count.ts";

export type Command = "run" | "validate" | "version" | "help";

export interface CliArgs {
  command: Command;
  config: string;
  check: boolean;
  workers: WorkersFlag;
  logLevel: "debug" | "info" | "warn" | "error";
}

export const DEFAULT_CONFIG = "config/gateway.yaml";

export class UsageError extends Error {
  override name = "UsageError";
}

export function parseArgs(argv: readonly string[]): CliArgs {
  const out: CliArgs = {
    command: "run",
    // Set but empty (`GATEWAY_CONFIG=` in a unit file) means unset, not a file named "".
    config: Deno.env.get("GATEWAY_CONFIG") || DEFAULT_CONFIG,
    check: false,
    workers: null,
    logLevel: "info",
  };
  let commandSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "-c":
      case "--config":
        out.config = value();
        break;
      case "--check":
        out.check = true;
        break;
      case "--workers": {
        const v = value();
        const n = Number(v);
        if (v !== "auto" && (!Number.isInteger(n) || n < 1)) {
          throw new UsageError(`--workers expects a whole number >= 1 or "auto", got ${v}`);
        }
        out.workers = v === "auto" ? "auto" : n;
        break;
      }
      case "--log-level": {
        const v = value();
        if (!["debug", "info", "warn", "error"].includes(v)) {
          throw new UsageError(`--log-level expects debug, info, warn or error, got ${v}`);
        }
        out.logLevel = v as CliArgs["logLevel"];
        break;
      }
      case "-h":
      case "--help":
        out.command = "help";
        break;
      case "-V":
      case "--version":
        out.command = "version";
        break;
      default:
        if (arg.startsWith("-")) throw new UsageError(`Unknown flag ${arg}`);
        if (commandSeen) throw new UsageError(`Unexpected argument ${arg}`);
        if (!["run", "validate", "version", "help"].includes(arg)) {
          throw new UsageError(`Unknown command ${arg} (expected run, validate, version or help)`);
        }
        out.command = arg as Command;
        commandSeen = true;
    }
  }
  if (out.check && out.command === "run") out.command = "validate";
  return out;
}

export const USAGE = `API gateway

Usage:
  gateway [run] [--config FILE] [--workers N] [--log-level LEVEL]
  gateway validate [--config FILE] [--workers N]
  gateway version
  gateway help

Commands:
  run        Serve traffic with the given config (the default command).
  validate   Check the config and exit: 0 with a summary and the worker count run
             would use here, 1 with every error.
  version    Print the gateway version, the Deno version and the git commit.
  help       Print this help.

Flags:
  -c, --config FILE   Config file (default: ${DEFAULT_CONFIG}, or $GATEWAY_CONFIG).
      --check         With run: validate the config and exit, like validate.
      --workers N     Isolates sharing the listeners. Default: server.workers, else one
                      per core ("auto"). 1: a single isolate, no worker threads.
      --log-level L   debug, info, warn or error (default: info).
  -h, --help          Print this help.

Signals: SIGTERM/SIGINT drain in-flight requests and exit 0; SIGHUP reloads the config.
`;
