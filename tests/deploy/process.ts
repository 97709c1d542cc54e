/** The gateway CLI as a user runs it: one-shot commands, and the quickstart config. */
import { parse, stringify } from "yaml";
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { spawnGateway } from "../helpers/process.ts";
import { freePorts } from "../helpers/ports.ts";
import { V8_FLAGS_ARG } from "../../lib/cli/v8_flags.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** `deno run -A main.ts`: the gateway CLI from the sources. */
export const FROM_SOURCE = [Deno.execPath(), "run", "-A", V8_FLAGS_ARG, `${ROOT}main.ts`];

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(
  command: string[],
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

/** Statuses of `n` requests, each on a new connection so the kernel spreads them over workers. */
export async function statuses(
  url: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    try {
      const res = await fetch(url, { client, headers });
      await res.body?.cancel();
      out.push(res.status);
    } finally {
      client.close();
    }
  }
  return out;
}

/**
 * Runs the quickstart config (config/, copied into `dir`, with its ports moved
 * to free ones) with `command` until its admin API is ready, then stops it with
 * SIGTERM and expects exit code 0.
 */
export async function serveQuickstart(
  command: string[],
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
  const gw = await spawnGateway("gateway.yaml", `http://127.0.0.1:${admin}/readyz`, args, {
    command,
    cwd: copy,
    timeoutMs: 30_000,
  });
  assertEquals(await gw.stop("SIGTERM"), 0, gw.log.join("\n"));
}
