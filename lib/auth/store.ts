/**
 * Credentials that change without a reload: API keys added through the admin
 * API and revoked token ids (`jti`). Reads are synchronous lookups in a local
 * view so the request path never waits on the network; writes go to the
 * backing store. With `store.kind: memory` the view is the store (one
 * instance); with Redis every instance keeps a mirror (see redis_store.ts).
 *
 * A runtime key names its consumer by id only, so it must not outlive the
 * consumer: a reload that takes a consumer out of the config deletes its keys
 * (`dropConsumers`), or a later config reusing the id would hand them to
 * whoever the id then names.
 */

import type { Logger } from "../observe/logger.ts";

/** A runtime key: its digest and its consumer's id. */
export type RuntimeKey = [digest: string, consumer: string];

/** Says which keys `dropConsumers` deleted, when it deleted any. */
export function logDeletedKeys(logger: Logger, deleted: readonly RuntimeKey[]): void {
  if (deleted.length === 0) return;
  logger.warn("deleted the runtime API keys of consumers removed from the config", {
    keys: deleted.length,
    consumers: [...new Set(deleted.map(([, consumer]) => consumer))],
  });
}

export interface CredentialStore {
  readonly kind: "memory" | "redis";
  /** Consumer id of a key added at runtime, by digest. */
  keyOwner(digest: string): string | undefined;
  /** Whether a token id is revoked (and its token not yet expired) at `nowMs`. */
  isRevoked(jti: string, nowMs: number): boolean;
  addKey(digest: string, consumer: string): Promise<void>;
  /** Whether the key existed. */
  removeKey(digest: string): Promise<boolean>;
  /** Keys added at runtime: digest -> consumer id. */
  keys(): ReadonlyMap<string, string>;
  /** Revokes `jti` until `expSec` (Unix seconds), when no provider accepts its token anyway. */
  revoke(jti: string, expSec: number): Promise<void>;
  /**
   * Deletes the runtime keys of the consumers in `removed` (those a reload took
   * out of the config); resolves with the keys deleted. Idempotent: every
   * instance sharing the store runs it on the same reload, the first deletes.
   * `listed` are the consumers the config now lists: a deletion still owed from
   * an earlier reload (Redis was down) is forgotten for those.
   */
  dropConsumers(removed: ReadonlySet<string>, listed: ReadonlySet<string>): Promise<RuntimeKey[]>;
  close(): void;
}

/** The local view both stores keep: keys, and revocations that forget themselves at expiry. */
export class CredentialView {
  readonly keys = new Map<string, string>();
  /** jti -> expiry (ms). */
  readonly revoked = new Map<string, number>();

  isRevoked(jti: string, nowMs: number): boolean {
    const until = this.revoked.get(jti);
    if (until === undefined) return false;
    if (nowMs < until) return true;
    this.revoked.delete(jti);
    return false;
  }

  /** Drops revocations of tokens that have expired. */
  prune(nowMs: number): void {
    for (const [jti, until] of this.revoked) if (until <= nowMs) this.revoked.delete(jti);
  }

  /** Keys whose consumer is in `consumers`. */
  keysOf(consumers: ReadonlySet<string>): RuntimeKey[] {
    const out: RuntimeKey[] = [];
    for (const [digest, consumer] of this.keys) {
      if (consumers.has(consumer)) out.push([digest, consumer]);
    }
    return out;
  }
}

/** The reads every store answers from its local view; writes are each store's own. */
export abstract class ViewedCredentialStore implements CredentialStore {
  abstract readonly kind: "memory" | "redis";
  protected readonly view = new CredentialView();

  keyOwner(digest: string): string | undefined {
    return this.view.keys.get(digest);
  }
  isRevoked(jti: string, nowMs: number): boolean {
    return this.view.isRevoked(jti, nowMs);
  }
  keys(): ReadonlyMap<string, string> {
    return this.view.keys;
  }
  abstract addKey(digest: string, consumer: string): Promise<void>;
  abstract removeKey(digest: string): Promise<boolean>;
  abstract revoke(jti: string, expSec: number): Promise<void>;
  abstract dropConsumers(
    removed: ReadonlySet<string>,
    listed: ReadonlySet<string>,
  ): Promise<RuntimeKey[]>;
  abstract close(): void;
}

export class MemoryCredentialStore extends ViewedCredentialStore {
  readonly kind = "memory";

  constructor(private readonly now: () => number) {
    super();
  }

  addKey(digest: string, consumer: string): Promise<void> {
    this.view.keys.set(digest, consumer);
    return Promise.resolve();
  }
  removeKey(digest: string): Promise<boolean> {
    return Promise.resolve(this.view.keys.delete(digest));
  }
  revoke(jti: string, expSec: number): Promise<void> {
    // Revocations are few and written by operators: pruning on write keeps the set bounded.
    this.view.prune(this.now());
    this.view.revoked.set(jti, expSec * 1000);
    return Promise.resolve();
  }
  dropConsumers(removed: ReadonlySet<string>): Promise<RuntimeKey[]> {
    const deleted = removed.size === 0 ? [] : this.view.keysOf(removed);
    for (const [digest] of deleted) this.view.keys.delete(digest);
    return Promise.resolve(deleted);
  }
  close(): void {}
}
