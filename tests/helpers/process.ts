/** The gateway as a separate process (`deno run -A main.ts run`), for signals and memory tests. */
import { V8_FLAGS_ARG } from "../../lib/cli/v8_flags.ts";
import { freePort } from "./ports.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

export interface GatewayProcess {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  /** Resident set size of the process in bytes, from /proc. */
  rss(): Promise<number>;
  /** Sends a signal and waits for the exit code, and for the last line of its log. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Waits for the exit code (for a signal sent otherwise), and for the last line of its log. */
  exited(): Promise<number>;
  /**
   * Lines the process wrote to stderr so far (its JSON log). They are read as they come:
   * a line written just before an answer may not be here yet when the answer is.
   */
  readonly log: string[];
  /** Waits (up to `limitMs`) for a log line matching `re`; returns every line that matches. */
  logged(re: RegExp, count?: number, limitMs?: number): Promise<string[]>;
}

export interface SpawnOptions {
  /** The gateway CLI to run instead of `deno run -A main.ts` (a compiled binary). */
  command?: string[];
  cwd?: string;
  /** Environment variables set for the process, beside those it inherits. */
  env?: Record<string, string>;
  /** Headers of the readiness probe (an admin token). */
  readyHeaders?: Record<string, string>;
  /** How long to wait for ready (default 30 s: a process starting beside the suite is slow). */
  timeoutMs?: number;
}

/** Starts `main.ts run --config FILE` and waits until `readyUrl` answers 200. */
export async function spawnGateway(
  configFile: string,
  readyUrl: string,
  args: string[] = [],
  o: SpawnOptions = {},
): Promise<GatewayProcess> {
  const [cmd, ...cmdArgs] = o.command ?? [
    Deno.execPath(),
    "run",
    "-A",
    V8_FLAGS_ARG,
    ...(Deno.env.get("GW_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []),
    MAIN,
  ];
  const child = new Deno.Command(cmd!, {
    args: [...cmdArgs, "run", "--config", configFile, ...args],
    stdout: "null",
    stderr: "piped",
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...(o.env ? { env: o.env } : {}),
  }).spawn();
  const log: string[] = [];
  const reading = (async () => {
    const dec = new TextDecoderStream();
    let buf = "";
    for await (const s of child.stderr.pipeThrough(dec)) {
      buf += s;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      log.push(...lines);
    }
  })().catch(() => {});
  const exited = async () => {
    const { code } = await child.status;
    // The pipe ends with the process: what it wrote last is read by then.
    await reading;
    return code;
  };
  const gp: GatewayProcess = {
    child,
    pid: child.pid,
    log,
    async rss() {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb * 1024;
    },
    stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      return exited();
    },
    exited,
    async logged(re: RegExp, count = 1, limitMs = 10_000) {
      const deadline = Date.now() + limitMs;
      for (;;) {
        const found = log.filter((l) => re.test(l));
        if (found.length >= count) return found;
        if (Date.now() > deadline) {
          throw new Error(`${count} log line(s) matching ${re} not seen:\n${log.join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    try {
      const r = await fetch(readyUrl, { headers: o.readyHeaders ?? {} });
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

export interface ProxyProcess {
  readonly gw: GatewayProcess;
  /** `http://127.0.0.1:PORT` of the public listener. */
  readonly base: string;
  /** `http://127.0.0.1:PORT` of the admin listener. */
  readonly admin: string;
  /** Kills the process if still running and removes its config. */
  close(): Promise<void>;
}

/**
 * A gateway process (one isolate unless `workers` says otherwise) with one
 * catch-all route to `upstreamUrl`; `extra` adds top-level sections.
 */
export async function spawnProxyGateway(
  upstreamUrl: string,
  extra = "",
  workers = 1,
): Promise<ProxyProcess> {
  const dir = await Deno.makeTempDir();
  const port = freePort();
  const admin = freePort();
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(
    file,
    `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
${extra}
upstreams:
  a: { targets: [ { url: "${upstreamUrl}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a }
`,
  );
  // One isolate by default: most tests on this helper measure one (its RSS, its drain).
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, [
    "--workers",
    String(workers),
  ]);
  return {
    gw,
    base: `http://127.0.0.1:${port}`,
    admin: `http://127.0.0.1:${admin}`,
    async close() {
      await gw.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    },
  };
}
