/**
 * The worker side of the job contract (README, "Async jobs"): what a stream
 * entry holds, and the two atomic steps that make completion exactly-once.
 *
 * - `beginJob` runs before a worker calls the upstream. A job already done or
 *   failed (its worker finished, then died before XACK) is only acknowledged;
 *   a job past `maxAttempts` is failed; otherwise it is marked running, and
 *   lives `result_ttl` again from then.
 * - `completeJob` writes the result and acknowledges the entry in one script,
 *   and only if no other worker completed the job first. A job is therefore
 *   completed at most once; XAUTOCLAIM makes it at least once.
 *
 * The upstream call between the two can repeat (a worker killed mid-call, or
 * one so slow that its job was reclaimed); workers send `Idempotency-Key: <job
 * id>` so that the upstream can tell.
 */
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";

/** A job as read from its stream entry. */
export interface JobEntry {
  /** Stream entry id (what XACK takes). */
  entryId: string;
  job: string;
  route: string;
  /** Upstream named by the route (for workers serving several). */
  upstream: string;
  method: string;
  /** Path and query for the upstream, after the route's rewrites. */
  path: string;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer>;
  consumer: string;
  subject: string;
  requestId: string;
  createdAt: number;
  /** The job hash the result goes to. */
  resultKey: string;
  resultTtlMs: number;
}

/** Reads an entry's field/value list; null when it is not a job entry. */
export function parseEntry(entryId: string, fields: Buffer[]): JobEntry | null {
  const f = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!.toString(), fields[i + 1]!);
  const text = (name: string) => f.get(name)?.toString() ?? "";
  const job = text("job");
  const resultKey = text("result_key");
  if (!job || !resultKey) return null;
  let headers: [string, string][] = [];
  try {
    const parsed = JSON.parse(text("headers") || "[]");
    if (Array.isArray(parsed)) headers = parsed.filter(isPair);
  } catch {
    // Unreadable headers: the job still runs, with none.
  }
  const body = f.get("body");
  return {
    entryId,
    job,
    route: text("route"),
    upstream: text("upstream"),
    method: text("method") || "GET",
    path: text("path") || "/",
    headers,
    // Node Buffers from the client are views of plain (not shared) ArrayBuffers.
    body: body
      ? new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength)
      : new Uint8Array(),
    consumer: text("consumer"),
    subject: text("subject"),
    requestId: text("request_id"),
    createdAt: Number(text("created_at")) || 0,
    resultKey,
    resultTtlMs: Number(text("result_ttl_ms")) || 3_600_000,
  };
}

function isPair(v: unknown): v is [string, string] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === "string" &&
    typeof v[1] === "string";
}

// KEYS: job hash, stream. ARGV: group, entry id, worker, now, max attempts, ttl ms.
const BEGIN = `
local state = redis.call("HGET", KEYS[1], "state")
if not state or state == "done" or state == "failed" then
  redis.call("XACK", KEYS[2], ARGV[1], ARGV[2])
  return state or "gone"
end
local attempts = tonumber(redis.call("HGET", KEYS[1], "attempts") or "0")
if attempts >= tonumber(ARGV[5]) then
  redis.call("HSET", KEYS[1], "state", "failed", "finished_at", ARGV[4],
    "error", "gave up after " .. attempts .. " attempts")
  redis.call("PEXPIRE", KEYS[1], ARGV[6])
  redis.call("XACK", KEYS[2], ARGV[1], ARGV[2])
  return "gave_up"
end
redis.call("HSET", KEYS[1], "state", "running", "worker", ARGV[3], "started_at", ARGV[4],
  "attempts", attempts + 1)
-- A job started just before it would expire must outlive its upstream call.
redis.call("PEXPIRE", KEYS[1], ARGV[6])
return "run"
`;

// KEYS: job hash, stream. ARGV: group, entry id, ttl ms, now, final state, then field/value pairs.
const COMPLETE = `
redis.call("XACK", KEYS[2], ARGV[1], ARGV[2])
local state = redis.call("HGET", KEYS[1], "state")
if not state or state == "done" or state == "failed" then return 0 end
redis.call("HSET", KEYS[1], "state", ARGV[5], "finished_at", ARGV[4], unpack(ARGV, 6))
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1
`;

interface WorkerCommands {
  gwJobBegin(...args: (string | number)[]): Promise<string>;
  gwJobComplete(...args: (string | number | Buffer)[]): Promise<number>;
}

function commands(redis: Redis): Redis & WorkerCommands {
  if (!("gwJobBegin" in redis)) {
    redis.defineCommand("gwJobBegin", { numberOfKeys: 2, lua: BEGIN });
    redis.defineCommand("gwJobComplete", { numberOfKeys: 2, lua: COMPLETE });
  }
  return redis as Redis & WorkerCommands;
}

/**
 * `run`: call the upstream. `done` / `failed`: another worker already completed
 * it. `gone`: the job expired. `gave_up`: it is now failed after too many
 * attempts. In every case but `run` the entry is acknowledged.
 */
export type BeginOutcome = "run" | "done" | "failed" | "gone" | "gave_up";

export interface WorkerIdentity {
  stream: string;
  group: string;
  /** Consumer name within the group. */
  name: string;
}

export function beginJob(
  redis: Redis,
  w: WorkerIdentity,
  e: JobEntry,
  now: number,
  maxAttempts: number,
): Promise<BeginOutcome> {
  return commands(redis).gwJobBegin(
    e.resultKey,
    w.stream,
    w.group,
    e.entryId,
    w.name,
    now,
    maxAttempts,
    e.resultTtlMs,
  ) as Promise<BeginOutcome>;
}

/** The upstream's answer: `headers` are lower-case names, repeated fields joined with ", ". */
export interface JobResult {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Stores the result and acknowledges the entry; false when another worker completed it first. */
export function completeJob(
  redis: Redis,
  w: WorkerIdentity,
  e: JobEntry,
  now: number,
  result: JobResult,
): Promise<boolean> {
  return finish(redis, w, e, now, "done", [
    "status",
    result.status,
    "headers",
    JSON.stringify(result.headers),
    "body",
    // ioredis sends only Buffers as bytes; anything else is turned into text.
    Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength),
  ]);
}

/** Marks the job failed (a permanent error, no upstream answer) and acknowledges the entry. */
export function failJob(
  redis: Redis,
  w: WorkerIdentity,
  e: JobEntry,
  now: number,
  error: string,
): Promise<boolean> {
  return finish(redis, w, e, now, "failed", ["error", error]);
}

async function finish(
  redis: Redis,
  w: WorkerIdentity,
  e: JobEntry,
  now: number,
  state: "done" | "failed",
  fields: (string | number | Buffer)[],
): Promise<boolean> {
  const written = await commands(redis).gwJobComplete(
    e.resultKey,
    w.stream,
    w.group,
    e.entryId,
    e.resultTtlMs,
    now,
    state,
    ...fields,
  );
  return written === 1;
}
