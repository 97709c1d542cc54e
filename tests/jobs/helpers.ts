/** Shared pieces of the async-job tests: config, worker processes, polling. */
import { Redis } from "ioredis";
import { baseConfig } from "../helpers/gateway.ts";

export const PREFIX = "t:";
export const STREAM_KEY = `${PREFIX}orders`;

export interface JobsConfigExtras {
  /** More route items (YAML list entries, indented two spaces). */
  routes?: string;
  /** More upstream entries (indented two spaces). */
  upstreams?: string;
  /** More top-level sections. */
  top?: string;
}

/** A gateway config with one async route `orders` (path /orders) on `upstream`. */
export function jobsConfig(
  redisUrl: string,
  upstreamUrl: string,
  extra: JobsConfigExtras = {},
): string {
  return baseConfig(`store:
  kind: redis
  redis: { url: "${redisUrl}", prefix: "${PREFIX}", timeout_ms: 500 }
upstreams:
  orders: { targets: [ { url: "${upstreamUrl}" } ] }
${extra.upstreams ?? ""}${extra.top ?? ""}routes:
  - name: orders
    match: { path: /orders }
    upstream: orders
    async: { stream: orders, result_ttl: 10m }
${extra.routes ?? ""}`);
}

/** A plain client for looking at what the gateway and workers wrote. */
export function redisClient(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  // Outage tests stop the server under it; the commands they send report the failures.
  client.on("error", () => {});
  return client;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface WorkerEvent {
  event: string;
  job?: string;
  [field: string]: unknown;
}

/** `examples/worker.ts` as a child process, with its JSON-line events collected. */
export interface WorkerProcess {
  readonly events: WorkerEvent[];
  count(event: string): number;
  /** SIGKILL: the worker dies with whatever it holds. */
  kill(): Promise<void>;
  /** SIGTERM: the worker finishes what it holds, then exits. */
  stop(): Promise<void>;
}

export async function spawnWorker(args: string[]): Promise<WorkerProcess> {
  const root = new URL("../../", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "examples/worker.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const events: WorkerEvent[] = [];
  const reading = (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) events.push(JSON.parse(line));
      }
    }
  })();
  let exited = false;
  const end = async (signal: Deno.Signal) => {
    if (!exited) {
      exited = true;
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
    await child.status;
    await reading;
  };
  try {
    await waitFor("the worker to start", () => {
      if (events.some((e) => e.event === "ready")) return true;
    }, 30_000);
  } catch (e) {
    await end("SIGKILL");
    throw e;
  }
  return {
    events,
    count: (event) => events.filter((e) => e.event === event).length,
    kill: () => end("SIGKILL"),
    stop: () => end("SIGTERM"),
  };
}
