/**
 * Redis key names of the job store, all under `store.redis.prefix`. Workers
 * never build these: every stream entry carries the key of its job hash.
 */
import { createHash } from "node:crypto";

/** The stream a route's jobs are appended to. */
export function streamKey(prefix: string, stream: string): string {
  return prefix + stream;
}

/** The hash holding a job's state and, once done, its result. */
export function jobKey(prefix: string, id: string): string {
  return `${prefix}job:${id}`;
}

/**
 * The record of an Idempotency-Key, per owner. Hashed so that neither part can
 * run into the other (`a:b` + `c` vs `a` + `b:c`) and keys stay short.
 */
export function idempotencyKey(prefix: string, owner: string, key: string): string {
  const digest = createHash("sha256").update(owner).update("\n").update(key).digest("hex");
  return `${prefix}job-idem:${digest}`;
}

/** Job ids are random UUIDs: unguessable, so an id alone reveals nothing to other callers. */
export const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
