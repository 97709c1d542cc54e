/**
 * Reference worker for async routes: consumes a job stream with a consumer
 * group, forwards each job to an upstream over HTTP, stores the answer as the
 * job's result, and reclaims the jobs of dead workers with XAUTOCLAIM.
 *
 *   deno run -A examples/worker.ts --stream gw:orders --upstream http://10.0.1.40:8080
 *
 * Several workers (processes or hosts) share the stream through one group.
 * SIGTERM or SIGINT: stop reading, finish the jobs in flight, exit. A worker
 * killed outright loses nothing: its unacknowledged jobs are reclaimed by the
 * others once they have been idle for --claim-idle-ms.
 */
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import type { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import {
  beginJob,
  completeJob,
  failJob,
  type JobEntry,
  type JobResult,
  parseEntry,
  type WorkerIdentity,
} from "../lib/jobs/worker_protocol.ts";

export interface WorkerOptions {
  redisUrl: string;
  stream: string;
  group: string;
  name: string;
  /** Base URL per upstream name; "" is the one for jobs whose upstream has no entry. */
  upstreams: Map<string, string>;
  concurrency: number;
  /** Entries of other workers idle this long are reclaimed. */
  claimIdleMs: number;
  claimIntervalMs: number;
  maxAttempts: number;
  timeoutMs: number;
  blockMs: number;
}

/** Fields the fetch layer owns, and hop-by-hop fields, which a stored answer does not keep. */
const NOT_FORWARDED = new Set(["host", "content-length", "connection", "transfer-encoding"]);
const NOT_STORED = new Set(["connection", "keep-alive", "transfer-encoding"]);

type Entries = [id: Buffer, fields: Buffer[] | null][];

function log(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ time: new Date().toISOString(), event, ...fields }));
}

export class Worker {
  /** Commands; a second connection blocks in XREADGROUP so that it never delays them. */
  private readonly redis: Redis;
  private readonly reader: Redis;
  private readonly identity: WorkerIdentity;
  private readonly inFlight = new Set<Promise<void>>();
  /** Stream entries this worker is processing: XAUTOCLAIM returns them once they idle too. */
  private readonly holding = new Set<string>();
  private stopping = false;
  private readonly stopped = new AbortController();
  private slotFreed: (() => void) | null = null;

  constructor(private readonly o: WorkerOptions) {
    const retry = { retryStrategy: (n: number) => Math.min(100 * n, 2_000) };
    this.redis = new Redis(o.redisUrl, retry);
    this.reader = new Redis(o.redisUrl, retry);
    for (const c of [this.redis, this.reader]) {
      c.on("error", (e: Error) => log("redis_error", { error: e.message }));
    }
    this.identity = { stream: o.stream, group: o.group, name: o.name };
  }

  async run(): Promise<void> {
    await this.ensureGroup();
    log("ready", { stream: this.o.stream, group: this.o.group, worker: this.o.name });
    await Promise.all([this.readLoop(), this.claimLoop()]);
    await Promise.all(this.inFlight);
    this.redis.disconnect();
    this.reader.disconnect();
    log("stopped", { worker: this.o.name });
  }

  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopped.abort();
    this.slotFreed?.();
    // Ends a blocking XREADGROUP now rather than after --block-ms.
    this.reader.disconnect();
  }

  private async ensureGroup(): Promise<void> {
    try {
      // From the start of the stream: jobs queued before the first worker are not skipped.
      await this.redis.xgroup("CREATE", this.o.stream, this.o.group, "0", "MKSTREAM");
    } catch (e) {
      if (!String((e as Error).message).includes("BUSYGROUP")) throw e;
    }
  }

  /** Waits `ms`, or less if the worker is stopped meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopped.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopped.signal.addEventListener("abort", done);
    });
  }

  private get room(): number {
    return this.o.concurrency - this.inFlight.size;
  }

  private async waitForRoom(): Promise<void> {
    while (this.room <= 0 && !this.stopping) {
      await new Promise<void>((r) => (this.slotFreed = r));
    }
  }

  private async readLoop(): Promise<void> {
    while (!this.stopping) {
      await this.waitForRoom();
      if (this.stopping) break;
      let reply;
      try {
        reply = await this.reader.xreadgroupBuffer(
          "GROUP",
          this.o.group,
          this.o.name,
          "COUNT",
          this.room,
          "BLOCK",
          this.o.blockMs,
          "STREAMS",
          this.o.stream,
          ">",
        ) as [Buffer, Entries][] | null;
      } catch (e) {
        if (this.stopping) break;
        log("read_failed", { error: (e as Error).message });
        await this.sleep(500);
        continue;
      }
      for (const [, entries] of reply ?? []) this.startAll(entries, false);
    }
  }

  /** Takes over entries another worker read but never acknowledged (it died, or hangs). */
  private async claimLoop(): Promise<void> {
    let cursor = "0-0";
    while (!this.stopping) {
      await this.sleep(this.o.claimIntervalMs);
      if (this.stopping || this.room <= 0) continue;
      try {
        const [next, entries, deleted] = await this.redis.callBuffer("XAUTOCLAIM", [
          this.o.stream,
          this.o.group,
          this.o.name,
          this.o.claimIdleMs,
          cursor,
          "COUNT",
          this.room,
        ]) as [Buffer, Entries, Buffer[] | undefined];
        cursor = next.toString();
        // Its own jobs still running (a slow upstream) are not started a second time: the
        // claim only resets their idle time.
        const others = entries.filter(([id]) => !this.holding.has(id.toString()));
        if (others.length > 0) {
          log("reclaimed", { count: others.length, entries: others.map(([id]) => String(id)) });
          this.startAll(others, true);
        }
        if (deleted?.length) {
          // Trimmed by MAXLEN before anyone finished them: their jobs stay pending until they expire.
          log("reclaim_trimmed", { count: deleted.length, entries: deleted.map(String) });
        }
      } catch (e) {
        log("claim_failed", { error: (e as Error).message });
      }
    }
  }

  private startAll(entries: Entries, reclaimed: boolean): void {
    for (const [rawId, fields] of entries) {
      const id = rawId.toString();
      const entry = fields ? parseEntry(id, fields) : null;
      if (entry === null) {
        // Not a job (or trimmed away): acknowledge it so that it is not reclaimed forever.
        void this.redis.xack(this.o.stream, this.o.group, id).catch(() => {});
        log("skipped", { entry: id, reason: "not a job entry" });
        continue;
      }
      const p = this.process(entry, reclaimed).catch((e) =>
        log("job_error", { job: entry.job, error: (e as Error).message })
      ).finally(() => {
        this.inFlight.delete(p);
        this.holding.delete(id);
        this.slotFreed?.();
      });
      this.inFlight.add(p);
      this.holding.add(id);
    }
  }

  private async process(e: JobEntry, reclaimed: boolean): Promise<void> {
    const outcome = await beginJob(this.redis, this.identity, e, Date.now(), this.o.maxAttempts);
    if (outcome !== "run") {
      log("skipped", { job: e.job, entry: e.entryId, reason: outcome, reclaimed });
      return;
    }
    const base = this.o.upstreams.get(e.upstream) ?? this.o.upstreams.get("");
    if (base === undefined) {
      await failJob(this.redis, this.identity, e, Date.now(), `no upstream for "${e.upstream}"`);
      log("failed", { job: e.job, reason: "no upstream", upstream: e.upstream });
      return;
    }
    let result: JobResult;
    try {
      result = await this.forward(base, e);
    } catch (err) {
      // Left unacknowledged: reclaimed after --claim-idle-ms, until --max-attempts.
      log("forward_failed", { job: e.job, error: (err as Error).message });
      return;
    }
    const written = await completeJob(this.redis, this.identity, e, Date.now(), result);
    log(written ? "completed" : "already_completed", {
      job: e.job,
      entry: e.entryId,
      status: result.status,
      reclaimed,
    });
  }

  private async forward(base: string, e: JobEntry): Promise<JobResult> {
    const headers = new Headers();
    for (const [name, value] of e.headers) {
      if (!NOT_FORWARDED.has(name)) headers.append(name, value);
    }
    headers.set("idempotency-key", e.job);
    headers.set("x-job-id", e.job);
    // fetch decodes gzip and br bodies but keeps Content-Encoding and Content-Length, unless
    // asked for identity: the stored answer must be the bytes its headers describe.
    headers.set("accept-encoding", "identity");
    const res = await fetch(base + e.path, {
      method: e.method,
      headers,
      body: e.method === "GET" || e.method === "HEAD" ? null : e.body,
      redirect: "manual",
      signal: AbortSignal.timeout(this.o.timeoutMs),
    });
    const body = new Uint8Array(await res.arrayBuffer());
    const stored: Record<string, string> = {};
    for (const [name, value] of res.headers) {
      if (NOT_STORED.has(name)) continue;
      stored[name] = name in stored ? `${stored[name]}, ${value}` : value;
    }
    return { status: res.status, headers: stored, body };
  }
}

const USAGE = `Usage: deno run -A examples/worker.ts --stream KEY --upstream URL [options]

  --redis URL            Redis (default $REDIS_URL or redis://127.0.0.1:6379)
  --stream KEY           Stream key: store.redis.prefix + the route's async.stream (gw:orders)
  --group NAME           Consumer group (default workers)
  --name NAME            Consumer name, unique per worker (default host-pid)
  --upstream URL         Base URL jobs are sent to; NAME=URL for jobs of one upstream (repeatable)
  --concurrency N        Jobs in flight at once (default 8)
  --claim-idle-ms MS     Reclaim entries unacknowledged this long (default 30000)
  --claim-interval-ms MS How often to look for them (default 5000)
  --max-attempts N       Attempts before a job is failed (default 5)
  --timeout-ms MS        Upstream call timeout (default 30000)
  --block-ms MS          XREADGROUP BLOCK (default 2000)`;

export function parseWorkerArgs(args: string[], env = Deno.env.toObject()): WorkerOptions {
  const { values } = parseArgs({
    args,
    options: {
      redis: { type: "string", default: env.REDIS_URL ?? "redis://127.0.0.1:6379" },
      stream: { type: "string" },
      group: { type: "string", default: "workers" },
      name: { type: "string", default: `${hostname()}-${Deno.pid}` },
      upstream: { type: "string", multiple: true, default: [] },
      concurrency: { type: "string", default: "8" },
      "claim-idle-ms": { type: "string", default: "30000" },
      "claim-interval-ms": { type: "string", default: "5000" },
      "max-attempts": { type: "string", default: "5" },
      "timeout-ms": { type: "string", default: "30000" },
      "block-ms": { type: "string", default: "2000" },
    },
  });
  if (!values.stream) throw new Error("--stream is required");
  const upstreams = new Map<string, string>();
  for (const u of values.upstream) {
    const eq = u.indexOf("=");
    const [name, url] = eq > 0 && !u.slice(0, eq).includes("/")
      ? [u.slice(0, eq), u.slice(eq + 1)]
      : ["", u];
    upstreams.set(name, new URL(url).href.replace(/\/$/, ""));
  }
  if (upstreams.size === 0) throw new Error("--upstream is required");
  const int = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} expects a positive integer`);
    return n;
  };
  return {
    redisUrl: values.redis,
    stream: values.stream,
    group: values.group,
    name: values.name,
    upstreams,
    concurrency: int("concurrency"),
    claimIdleMs: int("claim-idle-ms"),
    claimIntervalMs: int("claim-interval-ms"),
    maxAttempts: int("max-attempts"),
    timeoutMs: int("timeout-ms"),
    blockMs: int("block-ms"),
  };
}

if (import.meta.main) {
  let options: WorkerOptions;
  try {
    options = parseWorkerArgs(Deno.args);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  const worker = new Worker(options);
  Deno.addSignalListener("SIGTERM", () => worker.stop());
  Deno.addSignalListener("SIGINT", () => worker.stop());
  await worker.run();
}
