/**
 * A key or revocation change of `store.kind: memory` reaching every worker's
 * mirror (`shared_credentials.ts`). The admin write answers once each worker
 * has applied it, so that no worker accepts a deleted key or a revoked token
 * after the answer; a worker that does not answer within a bound is logged and
 * the write answered anyway, so that one stuck worker cannot hold the admin API.
 */
import { errorFields, type Logger } from "../observe/logger.ts";
import type { CredentialChange } from "./shared_credentials.ts";
import { type ArmTimer, systemTimer } from "./worker_wait.ts";

/** How long a write waits for the slowest worker before it answers anyway. */
export const CREDENTIALS_APPLY_WAIT_MS = 5_000;

/** A worker as the wait sees it (`WorkerHandle`). */
export interface CredentialMirror {
  readonly options: { readonly index: number };
  /**
   * Settles once the worker has applied the change, or once the worker is
   * gone: it restarts from the owner's snapshot, which already holds the change.
   */
  applyCredentials(change: CredentialChange): Promise<void>;
}

export interface ApplyWaitOptions {
  /** How long to wait for a worker that does not answer (default `CREDENTIALS_APPLY_WAIT_MS`). */
  waitMs?: number;
  logger: Logger;
  timer?: ArmTimer;
}

/**
 * Tells every worker of `change` and resolves, once, when each has applied it
 * (or is gone), or after `waitMs`, with the indices of the workers that have
 * not applied it. It never rejects: the owner holds the change already, and a
 * worker that has not applied it gets it when it runs again.
 */
export async function everyWorkerApplies(
  workers: readonly CredentialMirror[],
  change: CredentialChange,
  o: ApplyWaitOptions,
): Promise<number[]> {
  const waitMs = o.waitMs ?? CREDENTIALS_APPLY_WAIT_MS;
  const unanswered = new Set(workers);
  const failed: CredentialMirror[] = [];
  const answered = Promise.all(workers.map(async (w) => {
    try {
      await w.applyCredentials(change);
    } catch (e) {
      // `WorkerHandle` never rejects; if a worker could not even be sent the change, say so.
      failed.push(w);
      o.logger.error("a worker could not be sent a key or revocation change", {
        worker: w.options.index,
        ...errorFields(e),
      });
    }
    unanswered.delete(w);
  }));
  const { promise: capped, resolve: cap } = Promise.withResolvers<void>();
  const disarm = (o.timer ?? systemTimer)(cap, waitMs);
  try {
    await Promise.race([answered, capped]);
  } finally {
    disarm();
  }
  // Read once, here: an answer after the cap must not change what this write reported.
  const late = [...unanswered].map((w) => w.options.index);
  if (late.length > 0) {
    o.logger.warn("workers have not applied a key or revocation change yet", {
      workers: late,
      waited_ms: waitMs,
    });
  }
  return [...failed.map((w) => w.options.index), ...late].sort((a, b) => a - b);
}
