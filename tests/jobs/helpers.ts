/** Shared pieces of the async-job tests: config, worker processes, polling. */
import type { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { type JobEntry, parseEntry, type WorkerIdentity } from "../../lib/jobs/worker_protocol.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { startRedis, type TestRedis } from "../helpers/redis.ts";
import type { TestServer } from "../helpers/upstream.ts";

export const PREFIX = "t:";
export const STREAM_KEY = `${PREFIX}orders`;

export interface JobsConfigExtras {
  /** More keys of the `orders` route (indented four spaces). */
  orders?: string;
  /** More route items (YAML list entries, indented two spaces). */
  routes?: string;
  /** More upstream entries (indented two spaces). */
  upstreams?: string;
  /** More top-level sections. */
  top?: string;
}

/**
 * A gateway config with one async route `orders` (path /orders) on `upstream`.
 * The command timeout is generous: on a loaded test machine a stalled process
 * must not turn into a 503 (outages fail fast anyway, without waiting for it).
 */
export function jobsConfig(
  redisUrl: string,
  upstreamUrl: string,
  extra: JobsConfigExtras = {},
): string {
  return baseConfig(`store:
  kind: redis
  redis: { url: "${redisUrl}", prefix: "${PREFIX}", timeout_ms: 3000 }
upstreams:
  orders: { targets: [ { url: "${upstreamUrl}" } ] }
${extra.upstreams ?? ""}${extra.top ?? ""}routes:
  - name: orders
    match: { path: /orders }
    upstream: orders
    async: { stream: orders, result_ttl: 10m }
${extra.orders ?? ""}${extra.routes ?? ""}`);
}

export interface JobsEnv {
  g: TestGateway;
  redis: TestRedis;
  /** A client on the same redis-server, for looking at what was written. */
  db: Redis;
  up: TestServer;
}

/** Runs `fn` with a redis-server and a gateway on `jobsConfig`; closes them and `up` after. */
export async function withJobs(
  up: TestServer,
  fn: (env: JobsEnv) => Promise<void>,
  extra: JobsConfigExtras = {},
): Promise<void> {
  const redis = await startRedis();
  const db = redisClient(redis.url);
  try {
    const g = await startGateway(jobsConfig(redis.url, up.url, extra));
    try {
      await fn({ g, redis, db, up });
    } finally {
      await g.close();
    }
  } finally {
    db.disconnect();
    await up.close();
    await redis.close();
  }
}

/**
 * Creates `w.group` and reads every entry as consumer `w.name`, the way a worker
 * does: the entries stay pending for that consumer until acknowledged.
 */
export async function readAsConsumer(db: Redis, w: WorkerIdentity): Promise<JobEntry[]> {
  await db.xgroup("CREATE", w.stream, w.group, "0");
  const read = await db.xreadgroupBuffer(
    "GROUP",
    w.group,
    w.name,
    "COUNT",
    1000,
    "STREAMS",
    w.stream,
    ">",
  ) as [Buffer, [Buffer, Buffer[]][]][] | null;
  return (read?.[0]?.[1] ?? []).map(([id, f]) => parseEntry(id.toString(), f)!);
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
