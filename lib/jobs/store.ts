/**
 * The gateway's side of the job store: create a job (one atomic script: the
 * Idempotency-Key check, the stream entry and the job hash) and read a job back.
 * Workers write the rest of the hash (see `worker_protocol.ts`).
 */
import { Buffer } from "node:buffer";
import type { Redis } from "../store/redis.ts";
import { idempotencyKey, jobKey } from "./keys.ts";

/** Job states, as stored in the `state` field of the job hash. */
export type JobState = "pending" | "running" | "done" | "failed";

/** Everything the gateway records about a new job. */
export interface NewJob {
  id: string;
  /** Who may read the job (see `jobOwner`). */
  owner: string;
  route: string;
  /** Stream key the entry goes to. */
  stream: string;
  ttlMs: number;
  maxlen: number;
  createdAt: number;
  /**
   * Idempotency-Key of the request, the hash of what it asked, and whose keys
   * it is looked up among (see `idempotencyScope`), when it sent one.
   */
  idempotency: { key: string; requestHash: string; scope: string } | null;
  /** Field/value pairs of the stream entry (the worker's input). */
  entry: (string | Buffer)[];
}

export type SubmitResult =
  | { kind: "created" }
  /** The Idempotency-Key named this earlier job with the same request. */
  | { kind: "existing"; id: string }
  /** The Idempotency-Key was used with a different request. */
  | { kind: "conflict" };

/** A job hash as read back; `null` fields were not written (yet). */
export interface JobRecord {
  state: JobState;
  owner: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  attempts: number;
  /** The upstream's answer, once done. */
  result: { status: number; headers: Record<string, string>; body: Uint8Array } | null;
  error: string | null;
}

// KEYS: stream, job hash, idempotency record ("" for none).
// ARGV: id, request hash, ttl ms, maxlen, owner, route, created_at, then entry field/value pairs.
const SUBMIT = `
local idem = KEYS[3]
if idem ~= "" then
  local prior = redis.call("GET", idem)
  if prior then
    local sep = string.find(prior, " ", 1, true)
    local id = string.sub(prior, 1, sep - 1)
    if string.sub(prior, sep + 1) ~= ARGV[2] then return {"conflict", id} end
    return {"existing", id}
  end
end
local entry = redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[4], "*", unpack(ARGV, 8))
redis.call("HSET", KEYS[2], "state", "pending", "owner", ARGV[5], "route", ARGV[6],
  "created_at", ARGV[7], "stream", KEYS[1], "entry", entry)
redis.call("PEXPIRE", KEYS[2], ARGV[3])
if idem ~= "" then redis.call("SET", idem, ARGV[1] .. " " .. ARGV[2], "PX", ARGV[3]) end
return {"created", ARGV[1]}
`;

interface JobCommands {
  gwJobSubmit(...args: (string | number | Buffer)[]): Promise<[string, string]>;
}

const STATES = new Set<string>(["pending", "running", "done", "failed"]);

export class JobStore {
  private readonly redis: Redis & JobCommands;

  constructor(redis: Redis, private readonly prefix: string) {
    // ioredis sends EVALSHA and falls back to EVAL once per connection.
    if (!("gwJobSubmit" in redis)) {
      redis.defineCommand("gwJobSubmit", { numberOfKeys: 3, lua: SUBMIT });
    }
    this.redis = redis as Redis & JobCommands;
  }

  async submit(job: NewJob): Promise<SubmitResult> {
    const idem = job.idempotency;
    const [kind, id] = await this.redis.gwJobSubmit(
      job.stream,
      jobKey(this.prefix, job.id),
      idem ? idempotencyKey(this.prefix, idem.scope, idem.key) : "",
      job.id,
      idem?.requestHash ?? "",
      job.ttlMs,
      job.maxlen,
      job.owner,
      job.route,
      job.createdAt,
      ...job.entry,
    );
    if (kind === "created") return { kind };
    if (kind === "existing") return { kind, id };
    return { kind: "conflict" };
  }

  /** The job, or `null` when it does not exist (never did, or expired). */
  async read(id: string): Promise<JobRecord | null> {
    const h = await this.redis.hgetallBuffer(jobKey(this.prefix, id));
    const state = h.state?.toString();
    if (state === undefined || !STATES.has(state)) return null;
    const num = (b: Buffer | undefined) => (b === undefined ? null : Number(b.toString()));
    return {
      state: state as JobState,
      owner: h.owner?.toString() ?? "",
      createdAt: num(h.created_at) ?? 0,
      startedAt: num(h.started_at),
      finishedAt: num(h.finished_at),
      attempts: num(h.attempts) ?? 0,
      result: state === "done" ? readResult(h) : null,
      error: h.error?.toString() ?? null,
    };
  }
}

function readResult(
  h: Record<string, Buffer>,
): JobRecord["result"] {
  let headers: Record<string, string> = {};
  try {
    const parsed = JSON.parse(h.headers?.toString() ?? "{}");
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) headers = parsed;
  } catch {
    // A worker wrote headers that are not a JSON object: the result keeps its status and body.
  }
  const body = h.body ?? Buffer.alloc(0);
  return {
    status: Number(h.status?.toString() ?? 0),
    headers,
    body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
  };
}
