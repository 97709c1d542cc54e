/**
 * API keys added at runtime and token revocations under `--workers N` with
 * `store.kind: memory`. Like the Redis store, each worker reads a local mirror
 * (requests never wait), and writes go to one owner, here the main thread,
 * which applies them and tells every worker. A write is answered once every
 * worker has applied it, so a deleted key or a revoked token is refused by
 * every worker from the moment the admin API answers. A worker that starts, or
 * restarts after a crash, gets the whole state with its start message.
 */
import { CredentialView, type RuntimeKey, ViewedCredentialStore } from "../auth/store.ts";
import type { RpcService, WorkerRpc } from "./rpc.ts";

export const CREDENTIALS_SERVICE = "credentials";

export type CredentialChange =
  | { op: "key"; digest: string; consumer: string }
  | { op: "unkey"; digest: string }
  | { op: "revoke"; jti: string; exp: number };

export interface CredentialSnapshot {
  keys: [string, string][];
  /** jti and the instant (ms) its revocation ends. */
  revoked: [string, number][];
}

function apply(view: CredentialView, c: CredentialChange): void {
  if (c.op === "key") view.keys.set(c.digest, c.consumer);
  else if (c.op === "unkey") view.keys.delete(c.digest);
  else view.revoked.set(c.jti, c.exp * 1000);
}

/** The worker side: a mirror for reads, the main thread for writes. */
export class WorkerCredentialStore extends ViewedCredentialStore {
  readonly kind = "memory";

  constructor(private readonly rpc: WorkerRpc, snapshot: CredentialSnapshot) {
    super();
    for (const [digest, consumer] of snapshot.keys) this.view.keys.set(digest, consumer);
    for (const [jti, until] of snapshot.revoked) this.view.revoked.set(jti, until);
  }

  /** A change made through any worker, announced by the main thread. */
  heard(change: CredentialChange, nowMs: number): void {
    if (change.op === "revoke") this.view.prune(nowMs);
    apply(this.view, change);
  }

  async addKey(digest: string, consumer: string): Promise<void> {
    await this.rpc.call(CREDENTIALS_SERVICE, "addKey", [digest, consumer]);
  }
  async removeKey(digest: string): Promise<boolean> {
    return await this.rpc.call(CREDENTIALS_SERVICE, "removeKey", [digest]) as boolean;
  }
  async revoke(jti: string, expSec: number): Promise<void> {
    await this.rpc.call(CREDENTIALS_SERVICE, "revoke", [jti, expSec]);
  }
  async dropConsumers(removed: ReadonlySet<string>): Promise<RuntimeKey[]> {
    if (removed.size === 0) return [];
    // Every worker asks on the reload; the owner deletes once and tells them all.
    return await this.rpc.call(CREDENTIALS_SERVICE, "dropConsumers", [[
      ...removed,
    ]]) as RuntimeKey[];
  }
  close(): void {
    // Lives as long as the worker: plans come and go, the mirror stays.
  }
}

/** The main-thread side: the one copy that counts, and the announcements. */
export class CredentialOwner {
  private readonly view = new CredentialView();

  /** `announce` resolves once every worker has applied the change. */
  constructor(
    private readonly now: () => number,
    private readonly announce: (change: CredentialChange) => Promise<unknown>,
  ) {}

  snapshot(): CredentialSnapshot {
    this.view.prune(this.now());
    return { keys: [...this.view.keys], revoked: [...this.view.revoked] };
  }

  service(): RpcService {
    // Applied here at once, so the order of changes is the order of calls, whenever workers answer.
    const change = async (c: CredentialChange): Promise<void> => {
      apply(this.view, c);
      await this.announce(c);
    };
    return {
      addKey: (digest: string, consumer: string) => change({ op: "key", digest, consumer }),
      removeKey: async (digest: string) => {
        if (!this.view.keys.has(digest)) return false;
        await change({ op: "unkey", digest });
        return true;
      },
      revoke: (jti: string, exp: number) => {
        // Revocations are few and written by operators: pruning on write keeps the set bounded.
        this.view.prune(this.now());
        return change({ op: "revoke", jti, exp });
      },
      dropConsumers: async (removed: string[]) => {
        const deleted = this.view.keysOf(new Set(removed));
        await Promise.all(deleted.map(([digest]) => change({ op: "unkey", digest })));
        return deleted;
      },
    };
  }
}
