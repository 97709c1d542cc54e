/**
 * The admin API of a cluster: one listener in the main thread, answered by the
 * workers. Reads go to the first worker, except `/metrics` (every worker's
 * samples, labelled `worker`, and the process's own, once) and `/readyz`
 * (ready only if all are). Changes to state every worker shares (keys and
 * revocations: Redis, or the main thread's store) are made once, through the
 * first worker. Other changes (cache purges, ...) touch per-isolate state, so
 * they go to every worker, the first one first, and the first worker's answer
 * is returned, unless another worker failed the change.
 */
import { errorResponse } from "../core/errors.ts";
import type { WorkerHandle } from "./worker_handle.ts";
import { MetricsRegistry } from "../observe/metrics/registry.ts";
import { PROCESS_WIDE_FAMILIES, registerProcessMetrics } from "../observe/process_metrics.ts";

/** The process-wide families, read in the main thread. */
const processMetrics = new MetricsRegistry();
registerProcessMetrics(processMetrics);

/** Admin paths whose state lives in a store shared by every worker. */
const SHARED_STATE = [/^\/keys(\/|$)/, /^\/revocations$/];

/** A worker as the admin API sees it (`WorkerHandle`). */
export type AdminWorker = Pick<WorkerHandle, "admin">;

export async function routeAdmin(req: Request, workers: readonly AdminWorker[]): Promise<Response> {
  const first = workers[0];
  if (!first) return errorResponse("shutting_down", crypto.randomUUID());
  const path = new URL(req.url).pathname;
  const read = req.method === "GET" || req.method === "HEAD";
  try {
    if (read && path === "/metrics") return await allMetrics(req, workers);
    if (read && path === "/readyz") return await allReady(req, workers);
    if (read || SHARED_STATE.some((p) => p.test(path))) return await first.admin(req);
    const body = req.body ? await req.arrayBuffer() : null;
    const copy = () => new Request(req.url, { method: req.method, headers: req.headers, body });
    const answer = await first.admin(copy());
    return answer.ok ? await alsoOnTheOthers(answer, workers.slice(1), copy) : answer;
  } catch (e) {
    // The worker took the request and stopped: a change may have been made all the same.
    return errorResponse("internal_error", crypto.randomUUID(), {
      message: `A worker could not answer: ${(e as Error).message}${
        read ? "" : "; the change may have been made"
      }`,
    });
  }
}

/**
 * The other workers make the change the first one made. A worker that fails it
 * answers for the write, which must be repeated: its state did not change. A
 * worker that stopped is left out: it restarts with its per-isolate state new.
 */
async function alsoOnTheOthers(
  answer: Response,
  others: readonly AdminWorker[],
  copy: () => Request,
): Promise<Response> {
  const answers = await Promise.all(others.map((w) => w.admin(copy()).catch(() => null)));
  const failed = answers.find((r) => r !== null && !r.ok) ?? null;
  for (const r of answers) if (r !== failed) await r?.body?.cancel();
  if (failed === null) return answer;
  await answer.body?.cancel();
  return failed;
}

async function allReady(req: Request, workers: readonly AdminWorker[]): Promise<Response> {
  const answers = await Promise.all(workers.map((w) => w.admin(req.clone())));
  const notReady = answers.find((r) => r.status !== 200);
  for (const r of answers) if (r !== (notReady ?? answers[0])) await r.body?.cancel();
  return notReady ?? answers[0]!;
}

async function allMetrics(req: Request, workers: readonly AdminWorker[]): Promise<Response> {
  const answers = await Promise.all(workers.map((w) => w.admin(req.clone())));
  const failed = answers.find((r) => r.status !== 200);
  if (failed) {
    for (const r of answers) if (r !== failed) await r.body?.cancel();
    return failed;
  }
  const texts = await Promise.all(answers.map((r) => r.text()));
  return new Response(mergeExpositions(texts) + processMetrics.render(), {
    headers: { "content-type": answers[0]!.headers.get("content-type") ?? "text/plain" },
  });
}

/**
 * Merges Prometheus text expositions, one per worker, into one: each family
 * keeps one HELP and TYPE line, and each sample gains a `worker="i"` label.
 * Process-wide families are left out: every worker would report the whole
 * process again.
 */
export function mergeExpositions(texts: string[]): string {
  const families = new Map<string, { help?: string; type?: string; samples: string[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, f = { samples: [] });
    return f;
  };
  texts.forEach((text, worker) => {
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
