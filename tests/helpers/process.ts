/** The gateway as a separate process (`deno run -A main.ts run`), for signals and memory tests. */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface GatewayProcess {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  /** Resident set size of the process in bytes, from /proc. */
  rss(): Promise<number>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Lines the process wrote to stderr so far (its JSON log). */
  readonly log: string[];
}

/** Starts `main.ts run --config FILE` and waits until `readyUrl` answers 200. */
export async function spawnGateway(
  configFile: string,
  readyUrl: string,
  args: string[] = [],
): Promise<GatewayProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(Deno.env.get("GW_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []),
      MAIN,
      "run",
      "--config",
      configFile,
      ...args,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  void (async () => {
    const dec = new TextDecoderStream();
    let buf = "";
    for await (const s of child.stderr.pipeThrough(dec)) {
      buf += s;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      log.push(...lines);
    }
  })().catch(() => {});
  const gp: GatewayProcess = {
    child,
    pid: child.pid,
    log,
    async rss() {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb * 1024;
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      return (await child.status).code;
    },
  };
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(readyUrl);
      await r.body?.cancel();
      if (r.status === 200) return gp;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await gp.stop("SIGKILL");
  throw new Error(`gateway did not become ready:\n${log.join("\n")}`);
}
