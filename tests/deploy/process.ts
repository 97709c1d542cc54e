/**
 * Gateways as separate processes (the compiled binary or `deno run main.ts`),
 * for tests of the CLI, signals, workers and multi-instance setups.
 */
import { parse, stringify } from "yaml";
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { closedPort } from "../helpers/upstream.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** How to start the gateway CLI: the compiled binary, or the sources through deno. */
export type GatewayCommand = string[];
export const FROM_SOURCE: GatewayCommand = [Deno.execPath(), "run", "-A", `${ROOT}main.ts`];

export interface GatewayProcess {
  readonly pid: number;
  /** Everything the process wrote to stderr (its log) so far. */
  log(): string;
  /** Sends a signal and waits for the exit, killing it if it takes longer than `timeoutMs`. */
  stop(signal?: Deno.Signal, timeoutMs?: number): Promise<Deno.CommandStatus>;
  readonly status: Promise<Deno.CommandStatus>;
}

export interface SpawnOptions {
  /** Polled until it answers 200; the process is considered up then. */
  readyUrl: string;
  /** Headers for the readiness probe (an admin token). */
  readyHeaders?: Record<string, string>;
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
}

export async function spawnGateway(
  command: GatewayCommand,
  args: string[],
  o: SpawnOptions,
): Promise<GatewayProcess> {
  const child = new Deno.Command(command[0]!, {
    args: [...command.slice(1), ...args],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
    ...(o.env ? { env: o.env } : {}),
    ...(o.cwd ? { cwd: o.cwd } : {}),
  }).spawn();
  let log = "";
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      log += dec.decode(chunk, { stream: true });
      if (log.length > 1_000_000) log = log.slice(-500_000);
    }
  })();
  const status = child.status.then(async (s) => {
    await reading;
    return s;
  });
  let exited = false;
  void status.then(() => (exited = true));
  const proc: GatewayProcess = {
    pid: child.pid,
    log: () => log,
    status,
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      if (!exited) {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<void>((r) => {
        timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // already gone
          }
          r();
        }, timeoutMs);
      });
      await Promise.race([status, killed]);
      clearTimeout(timer);
      return await status;
    },
  };
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`gateway exited before it was ready (${(await status).code}):\n${log}`);
    }
    try {
      const res = await fetch(o.readyUrl, { headers: o.readyHeaders ?? {} });
      await res.body?.cancel();
      if (res.status === 200) return proc;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop("SIGKILL");
  throw new Error(`gateway not ready at ${o.readyUrl} within ${o.timeoutMs ?? 30_000} ms:\n${log}`);
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(
  command: GatewayCommand,
  args: string[],
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command[0]!, {
    args: [...command.slice(1), ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Distinct free loopback ports. */
export function freePorts(n: number): number[] {
  const out = new Set<number>();
  while (out.size < n) out.add(closedPort());
  return [...out];
}

/**
 * Runs the quickstart config (config/, copied into `dir`, with its ports moved
 * to free ones) until its admin API is ready, then stops it with SIGTERM.
 */
export async function serveQuickstart(
  command: GatewayCommand,
  dir: string,
  args: string[] = [],
): Promise<void> {
  const copy = `${dir}/quickstart`;
  const cp = await new Deno.Command("cp", { args: ["-r", `${ROOT}config`, copy] }).output();
  assertOk(cp.success);
  const config = parse(await Deno.readTextFile(`${copy}/gateway.yaml`)) as {
    listeners?: { port?: number }[];
    admin?: { port?: number };
  };
  for (const l of config.listeners ?? []) l.port = freePorts(1)[0]!;
  assertOk(config.admin, "the quickstart config has an admin listener");
  const admin = config.admin.port = freePorts(1)[0]!;
  await Deno.writeTextFile(`${copy}/gateway.yaml`, stringify(config));
  const gw = await spawnGateway(command, ["--config", "gateway.yaml", ...args], {
    readyUrl: `http://127.0.0.1:${admin}/readyz`,
    cwd: copy,
  });
  const status = await gw.stop("SIGTERM");
  assertEquals(status.code, 0, gw.log());
}
