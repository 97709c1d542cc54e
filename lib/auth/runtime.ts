/**
 * Auth state that outlives a plan: the credential store (runtime keys and
 * revocations) and remote JWKS caches. Entries are keyed by the config that
 * defines them and counted by the plans using them: a reload that keeps a
 * provider keeps its cached keys, and the last plan to let go closes the entry.
 * One registry per running gateway (its RuntimeDeps).
 */
import type { RuntimeDeps } from "../plan/deps.ts";
import type { BuildContext } from "../plan/build_context.ts";
import type { StoreConfig } from "../store/schema.ts";
import { type CredentialStore, MemoryCredentialStore } from "./store.ts";
import { RedisCredentialStore } from "./redis_store.ts";
import { connectionKey } from "../store/redis.ts";

interface Entry {
  value: unknown;
  refs: number;
  close: () => void;
}

export class AuthRuntime {
  private readonly entries = new Map<string, Entry>();
  /** The consumers of the last config with auth that went live; null before the first. */
  private liveConsumers: ReadonlySet<string> | null = null;

  constructor(readonly deps: RuntimeDeps) {}

  /** The shared object for `key`, created on first use and held until `b`'s plan is disposed. */
  acquire<T>(b: BuildContext, key: string, create: () => T, close: (v: T) => void = () => {}): T {
    let e = this.entries.get(key);
    if (!e) {
      const value = create();
      e = { value, refs: 0, close: () => close(value) };
      this.entries.set(key, e);
    }
    e.refs++;
    const entry = e;
    b.onDispose(() => {
      if (--entry.refs === 0 && this.entries.get(key) === entry) {
        this.entries.delete(key);
        entry.close();
      }
    });
    return e.value as T;
  }

  /**
   * Records that a config listing `listed` went live, and returns the consumers
   * the one before it listed and it does not: those a reload removed. None at
   * start: a process that starts on an older config (a restart during a rollout)
   * must not delete the keys of consumers it never knew.
   */
  consumersRemoved(listed: ReadonlySet<string>): Set<string> {
    const before = this.liveConsumers;
    this.liveConsumers = listed;
    return new Set([...before ?? []].filter((id) => !listed.has(id)));
  }

  /** The credential store for a store config; Redis mirrors finish their first load first. */
  async store(b: BuildContext): Promise<CredentialStore> {
    const c = b.config.store;
    const now = () => this.deps.clock.now();
    const store = this.acquire<CredentialStore>(
      b,
      storeKey(c),
      () =>
        c.kind === "redis"
          ? new RedisCredentialStore(c.redis!, this.deps.redis, now, this.deps.logger)
          : this.deps.localCredentials ?? new MemoryCredentialStore(now),
      (s) => s.close(),
    );
    if (store instanceof RedisCredentialStore) await firstLoad(store, c.redis!.connect_timeout_ms);
    return store;
  }

  /** The store the running plan uses (for the admin API), if its config has any auth. */
  currentStore(c: StoreConfig): CredentialStore | undefined {
    return this.entries.get(storeKey(c))?.value as CredentialStore | undefined;
  }
}

function storeKey(c: StoreConfig): string {
  // Per client: a store kept past a reload must not keep a client its plans released.
  return c.kind === "redis"
    ? `store|redis|${connectionKey(c.redis!)}|${c.redis!.prefix}`
    : "store|memory";
}

/** Waits for the mirror's first load, but never longer than a connect timeout: Redis may be down. */
async function firstLoad(store: RedisCredentialStore, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([store.synced, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
}

const runtimes = new WeakMap<RuntimeDeps, AuthRuntime>();

export function authRuntime(deps: RuntimeDeps): AuthRuntime {
  let r = runtimes.get(deps);
  if (!r) runtimes.set(deps, r = new AuthRuntime(deps));
  return r;
}
