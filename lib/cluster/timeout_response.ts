/**
 * The one rendering of workers that did not answer the admin API in time
 * (`WorkerTimeoutError`): 504 `worker_timeout` in the common error shape,
 * naming the workers, and saying what became of the request.
 */
import { errorResponse } from "../core/errors.ts";
import type { WorkerTimeoutError } from "./worker_wait.ts";

/**
 * `outcome` follows the sentence "Worker 1 did not answer POST /cache/purge
 * within 5000 ms", for example "; the change may have been made".
 */
export function workerTimeoutResponse(
  timeouts: readonly WorkerTimeoutError[],
  outcome = "",
): Response {
  const workers = timeouts.map((t) => t.worker).sort((a, b) => a - b);
  const waitedMs = Math.max(...timeouts.map((t) => t.waitedMs));
  const who = workerNames(workers);
  const what = timeouts[0]?.what ?? "the request";
  const sentence = `${who} did not answer ${what} within ${waitedMs} ms${outcome}`;
  return errorResponse("worker_timeout", crypto.randomUUID(), {
    message: sentence[0]!.toUpperCase() + sentence.slice(1),
    extra: { unresponsive_workers: workers, waited_ms: waitedMs },
  });
}

/** "worker 1", "workers 0 and 2", "workers 0, 1 and 2". */
export function workerNames(indices: readonly number[]): string {
  if (indices.length === 1) return `worker ${indices[0]}`;
  return `workers ${indices.slice(0, -1).join(", ")} and ${indices.at(-1)}`;
}
