/**
 * The admin API of a cluster: one listener in the main thread, answered by the
 * workers. Reads go to the first worker, except `/metrics` (every worker's
 * samples, labelled `worker`, and the process's own, once) and `/readyz`
 * (ready only if all are). Changes to state every worker shares (keys and
 * revocations: Redis, or the main thread's store) are made once, through the
 * first worker. Other changes (cache purges, ...) touch per-isolate state, so
 * they go to every worker, the first one first, and the first worker's answer
 * is returned (with the counts of a purge summed), unless another worker
 * failed the change.
 *
 * Every question to a worker is bounded (`worker_wait.ts`): a worker that does
 * not answer in time is left out of `/metrics` (and named by
 * `gateway_worker_unresponsive`), makes `/readyz` 503, and any other request a
 * 504 `worker_timeout` that names it.
 */
import { errorResponse } from "../core/errors.ts";
import { json } from "../server/admin.ts";
import { MetricsRegistry } from "../observe/metrics/registry.ts";
import { CONTENT_TYPE } from "../observe/metrics/exposition.ts";
import { PROCESS_WIDE_FAMILIES, registerProcessMetrics } from "../observe/process_metrics.ts";
import { registerClusterMetrics, type WorkerHealth } from "./cluster_metrics.ts";
import { CREDENTIALS_APPLY_WAIT_MS } from "./credential_fanout.ts";
import { workerTimeoutResponse } from "./timeout_response.ts";
import { type AnswerWait, answerWithin, type ArmTimer, WorkerTimeoutError } from "./worker_wait.ts";

/**
 * How long an admin request waits for a worker. A worker answers from memory in
 * a millisecond or so, so 5 s is far beyond a GC pause or a busy moment, and
 * shorter than the usual 10 s timeout of a load balancer's probe, which then
 * reads our 503 instead of giving up on its own.
 */
export const ADMIN_ANSWER_WAIT_MS = 5_000;

/** Admin paths whose state lives in a store shared by every worker. */
const SHARED_STATE = [/^\/keys(\/|$)/, /^\/revocations$/];

/** Changes whose answer counts what a worker dropped: the cluster dropped the sum. */
const COUNTED: Readonly<Record<string, string>> = { "/cache/purge": "purged" };

/** A worker as the admin API sees it (`WorkerHandle`). */
export interface AdminWorker {
  readonly options: { readonly index: number };
  /** Aborting `signal` gives up the request: its answer, if it comes, is dropped. */
  admin(req: Request, signal?: AbortSignal): Promise<Response>;
}

export interface AdminFanoutOptions {
  /** How long to wait for a worker's answer (default `ADMIN_ANSWER_WAIT_MS`). */
  waitMs?: number;
  /**
   * The wait of a key or revocation write. The worker answers it only once the
   * main thread has waited for every worker's mirror (`credential_fanout.ts`),
   * so it is that wait on top of `waitMs` (default: `waitMs` plus
   * `CREDENTIALS_APPLY_WAIT_MS`); a shorter one would time out a healthy worker
   * that waits on a stuck one.
   */
  sharedWriteWaitMs?: number;
  timer?: ArmTimer;
  /** Restarts and the watchdog's view, for `/metrics` (none: those families are left out). */
  health?: WorkerHealth;
}

/** What one worker made of a request. */
type Asked =
  | { kind: "answered"; worker: number; response: Response }
  | { kind: "timed_out"; worker: number; error: WorkerTimeoutError }
  /** It stopped (crashed, or was terminated) before it answered. */
  | { kind: "stopped"; worker: number; error: unknown };

export async function routeAdmin(
  req: Request,
  workers: readonly AdminWorker[],
  o: AdminFanoutOptions = {},
): Promise<Response> {
  const path = new URL(req.url).pathname;
  const read = req.method === "GET" || req.method === "HEAD";
  // Liveness is the process's: the main thread answering is the proof. A stuck worker is the
  // watchdog's to replace and /readyz's to report; asked, it held this probe for the whole wait.
  if (read && path === "/healthz") {
    const ok = json({ status: "ok" });
    return req.method === "HEAD" ? new Response(null, ok) : ok;
  }
  const first = workers[0];
  if (!first) return errorResponse("shutting_down", crypto.randomUUID());
  const wait: AnswerWait = { waitMs: o.waitMs ?? ADMIN_ANSWER_WAIT_MS, timer: o.timer };
  try {
    if (read && path === "/metrics") return await allMetrics(req, workers, wait, o.health);
    if (read && path === "/readyz") return await allReady(req, workers, wait);
    if (read) return await ask(first, req, wait);
    if (SHARED_STATE.some((p) => p.test(path))) {
      const waitMs = o.sharedWriteWaitMs ?? wait.waitMs + CREDENTIALS_APPLY_WAIT_MS;
      return await ask(first, req, { ...wait, waitMs });
    }
    const body = req.body ? await req.arrayBuffer() : null;
    const copy = () => new Request(req.url, { method: req.method, headers: req.headers, body });
    const answer = await ask(first, copy(), wait);
    return answer.ok ? await alsoOnTheOthers(answer, path, workers.slice(1), copy, wait) : answer;
  } catch (e) {
    const change = read ? "" : "; the change may have been made";
    if (e instanceof WorkerTimeoutError) return workerTimeoutResponse([e], change);
    // The worker took the request and stopped: a change may have been made all the same.
    return errorResponse("internal_error", crypto.randomUUID(), {
      message: `A worker could not answer: ${(e as Error).message}${change}`,
    });
  }
}

/** `w`'s answer to `req`, or a `WorkerTimeoutError` once `wait` is over. */
function ask(w: AdminWorker, req: Request, wait: AnswerWait): Promise<Response> {
  const what = `${req.method} ${new URL(req.url).pathname}`;
  return answerWithin(w.options.index, what, (signal) => w.admin(req, signal), wait, cancelBody);
}

/** Asks every worker at once; never rejects. */
function askEach(
  workers: readonly AdminWorker[],
  request: () => Request,
  wait: AnswerWait,
): Promise<Asked[]> {
  return Promise.all(workers.map((w): Promise<Asked> => {
    const worker = w.options.index;
    return ask(w, request(), wait).then(
      (response) => ({ kind: "answered", worker, response }),
      (error) =>
        error instanceof WorkerTimeoutError
          ? { kind: "timed_out", worker, error }
          : { kind: "stopped", worker, error },
    );
  }));
}

function cancelBody(r: Response | null | undefined): void {
  r?.body?.cancel().catch(() => {});
}

/**
 * A worker that stopped while asked (crashed, or was terminated) fails the
 * whole read: its answer is not late, it will never come.
 */
function throwIfOneStopped(asked: readonly Asked[]): void {
  for (const a of asked) {
    if (a.kind !== "stopped") continue;
    cancelAll(asked);
    throw a.error;
  }
}

/** Cancels the body of every answer but `keep`. */
function cancelAll(asked: readonly Asked[], keep?: Response): void {
  for (const a of asked) if (a.kind === "answered" && a.response !== keep) cancelBody(a.response);
}

/**
 * The other workers make the change the first one made. A worker that fails it
 * answers for the write, which must be repeated: its state did not change. So
 * does one that does not answer in time: it may make the change later, or
 * never. A worker that stopped is left out: it restarts with its per-isolate
 * state new.
 */
async function alsoOnTheOthers(
  answer: Response,
  path: string,
  others: readonly AdminWorker[],
  copy: () => Request,
  wait: AnswerWait,
): Promise<Response> {
  const asked = await askEach(others, copy, wait);
  const answered = asked.flatMap((a) => a.kind === "answered" ? [a.response] : []);
  const failed = answered.find((r) => !r.ok);
  const timedOut = asked.flatMap((a) => a.kind === "timed_out" ? [a.error] : []);
  if (failed || timedOut.length > 0) {
    cancelAll(asked, failed);
    cancelBody(answer);
    return failed ?? workerTimeoutResponse(
      timedOut,
      ": the change was made on the other workers and may not have been made there; repeat it",
    );
  }
  const counted = COUNTED[path];
  return counted ? await sumCounts(counted, answer, answered) : (cancelAll(asked), answer);
}

/** The first answer with `field` the sum of every answer's. */
async function sumCounts(field: string, first: Response, rest: Response[]): Promise<Response> {
  const bodies = await Promise.all([first, ...rest].map(async (r) => await r.json()));
  let total = 0;
  for (const b of bodies) total += typeof b?.[field] === "number" ? b[field] : 0;
  return json({ ...bodies[0], [field]: total }, first.status);
}

async function allReady(
  req: Request,
  workers: readonly AdminWorker[],
  wait: AnswerWait,
): Promise<Response> {
  const asked = await askEach(workers, () => req.clone(), wait);
  throwIfOneStopped(asked);
  const timedOut = asked.flatMap((a) => a.kind === "timed_out" ? [a.error] : []);
  if (timedOut.length > 0) {
    // A worker that cannot answer a probe cannot be trusted with traffic either.
    cancelAll(asked);
    return json({
      status: "unresponsive",
      unresponsive_workers: timedOut.map((t) => t.worker),
      waited_ms: wait.waitMs,
    }, 503);
  }
  const answers = asked.flatMap((a) => a.kind === "answered" ? [a.response] : []);
  const answer = answers.find((r) => r.status !== 200) ?? answers[0]!;
  cancelAll(asked, answer);
  return answer;
}

/**
 * Every worker's samples, labelled by worker, but for those that did not answer
 * in time: a scrape that waited for them would time out whole, and the
 * `gateway_worker_unresponsive` gauge says which are missing.
 */
async function allMetrics(
  req: Request,
  workers: readonly AdminWorker[],
  wait: AnswerWait,
  health: WorkerHealth | undefined,
): Promise<Response> {
  const asked = await askEach(workers, () => req.clone(), wait);
  throwIfOneStopped(asked);
  const answered = asked.flatMap((a) => a.kind === "answered" ? [a] : []);
  const failed = answered.find((a) => a.response.status !== 200)?.response;
  if (failed) {
    cancelAll(asked, failed);
    return failed;
  }
  const texts = await Promise.all(answered.map((a) => a.response.text()));
  const merged = mergeExpositions(texts, answered.map((a) => a.worker));
  return new Response(merged + mainThreadExposition(asked, health), {
    headers: {
      "content-type": answered[0]?.response.headers.get("content-type") ?? CONTENT_TYPE,
    },
  });
}

/**
 * The families the main thread reports once: the process's, which workers
 * answered, and (`health`) the workers' restarts and silences.
 */
function mainThreadExposition(asked: readonly Asked[], health?: WorkerHealth): string {
  const m = new MetricsRegistry();
  registerProcessMetrics(m);
  registerClusterMetrics(
    m,
    () => asked.map((a) => ({ worker: a.worker, unresponsive: a.kind === "timed_out" })),
    health,
  );
  return m.render();
}

/**
 * Merges Prometheus text expositions, one per worker, into one: each family
 * keeps one HELP and TYPE line, and each sample gains a `worker="i"` label,
 * `i` the worker's index (`workers[n]` for `texts[n]`: a worker left out of a
 * scrape does not shift the others' labels).
 * Process-wide families are left out: every worker would report the whole
 * process again.
 */
export function mergeExpositions(
  texts: readonly string[],
  workers: readonly number[] = texts.map((_, i) => i),
): string {
  const families = new Map<string, { help?: string; type?: string; samples: string[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, f = { samples: [] });
    return f;
  };
  texts.forEach((text, i) => {
    const worker = workers[i] ?? i;
    let current = "";
    for (const line of text.split("\n")) {
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) {
        current = meta[2]!;
        if (PROCESS_WIDE_FAMILIES.has(current)) continue;
        const f = family(current);
        if (meta[1] === "HELP") f.help ??= line;
        else f.type ??= line;
        continue;
      }
      if (line === "" || line.startsWith("#")) continue;
      const name = /^[^{\s]+/.exec(line)?.[0] ?? "";
      // Histogram and summary samples (`_bucket`, `_sum`, `_count`) belong to the family above them.
      const owner = current !== "" && name.startsWith(current) ? current : name;
      if (PROCESS_WIDE_FAMILIES.has(owner)) continue;
      family(owner).samples.push(addLabel(line, name, `worker="${worker}"`));
    }
  });
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help) out.push(f.help);
    if (f.type) out.push(f.type);
    out.push(...f.samples);
  }
  return out.join("\n") + "\n";
}

function addLabel(line: string, name: string, label: string): string {
  const rest = line.slice(name.length);
  return rest.startsWith("{")
    ? `${name}{${label}${rest[1] === "}" ? "" : ","}${rest.slice(1)}`
    : `${name}{${label}}${rest}`;
}
