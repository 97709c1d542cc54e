/**
 * Keys and revocations shared by every instance through Redis. Each instance
 * keeps a mirror of two hashes (`<prefix>auth:keys`, `<prefix>auth:revoked`):
 * a write updates the hash and publishes the change on `<prefix>auth:events`
 * in one transaction, and every subscriber applies it within milliseconds.
 * The mirror is reloaded whole when the subscription (re)connects, so changes
 * missed while disconnected are caught up, and every 30 s as a backstop.
 *
 * Requests only read the mirror: a Redis outage never delays or fails one;
 * keys and revocations stay as they were last seen until Redis is back.
 */
import type { Redis } from "ioredis";
import type { RedisConfig } from "../store/schema.ts";
import type { RedisConnections } from "../store/redis.ts";
import { GatewayError } from "../core/errors.ts";
import { errorFields, type Logger } from "../observe/logger.ts";
import {
  type CredentialView,
  logDeletedKeys,
  type RuntimeKey,
  ViewedCredentialStore,
} from "./store.ts";

const RESYNC_MS = 30_000;

/**
 * Deletes, in one step, every key whose consumer is not among ARGV[2..] and
 * publishes each deletion on ARGV[1] as the admin API's DELETE does (so every
 * mirror, of any version, drops it). Replies digest, consumer, digest, ...
 * Run by every instance whose config goes live: the first one deletes, the
 * others find nothing; a key added meanwhile by an instance still on the old
 * config is deleted when that instance takes the new one.
 */
const DROP_SCRIPT = `
local removed = {}
for i = 2, #ARGV do removed[ARGV[i]] = true end
local all = redis.call('HGETALL', KEYS[1])
local deleted = {}
for i = 1, #all, 2 do
  if removed[all[i + 1]] then
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('PUBLISH', ARGV[1], cjson.encode({ op = 'unkey', digest = all[i] }))
    deleted[#deleted + 1] = all[i]
    deleted[#deleted + 1] = all[i + 1]
  end
end
return deleted
`;

type Change =
  | { op: "key"; digest: string; consumer: string }
  | { op: "unkey"; digest: string }
  | { op: "revoke"; jti: string; exp: number };

export class RedisCredentialStore extends ViewedCredentialStore {
  readonly kind = "redis";
  private readonly client: Redis;
  private readonly sub: Redis;
  private readonly keysKey: string;
  private readonly revokedKey: string;
  private readonly channel: string;
  private readonly timer: ReturnType<typeof setInterval>;
  /** Changes heard while a reload is in flight, replayed over its snapshot. */
  private heardDuringSync: Change[] | null = null;
  /** A reload was asked for while one ran (a reconnect): run another after it. */
  private syncAgain = false;
  /**
   * A reload was asked for before the command connection was up (it has no offline
   * queue, and the subscriber may connect first): run it when that connection is ready.
   */
  private syncWhenReady = false;
  /**
   * Consumers whose keys a reload could not delete (Redis unreachable): deleted
   * after the next complete reload of the mirror.
   */
  private owedDrop: Set<string> | null = null;
  private firstSync!: () => void;
  /** Resolves after the first complete load of the mirror. */
  readonly synced = new Promise<void>((r) => (this.firstSync = r));

  constructor(
    private readonly cfg: RedisConfig,
    private readonly conns: RedisConnections,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {
    super();
    this.keysKey = `${cfg.prefix}auth:keys`;
    this.revokedKey = `${cfg.prefix}auth:revoked`;
    this.channel = `${cfg.prefix}auth:events`;
    this.client = conns.get(cfg);
    // A subscribed connection can run no other command: it needs its own.
    this.sub = this.client.duplicate();
    this.sub.on("error", (e: Error) => conns.failed(cfg.url, e));
    this.sub.on("message", (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const change = parseChange(text);
      if (change) this.heard(change);
    });
    this.sub.on("ready", () => {
      this.sub.subscribe(this.channel).then(() => this.resync(), (e) => conns.failed(cfg.url, e));
    });
    this.client.on("ready", this.onClientReady);
    this.timer = setInterval(() => void this.resync(), RESYNC_MS);
  }

  addKey(digest: string, consumer: string): Promise<void> {
    return this.write(
      { op: "key", digest, consumer },
      (m) => m.hset(this.keysKey, digest, consumer),
    )
      .then(() => {});
  }
  removeKey(digest: string): Promise<boolean> {
    return this.write({ op: "unkey", digest }, (m) => m.hdel(this.keysKey, digest))
      .then((removed) => removed === 1);
  }
  revoke(jti: string, expSec: number): Promise<void> {
    return this.write(
      { op: "revoke", jti, exp: expSec },
      (m) => m.hset(this.revokedKey, jti, String(expSec)),
    ).then(() => {});
  }

  dropConsumers(removed: ReadonlySet<string>, listed: ReadonlySet<string>): Promise<RuntimeKey[]> {
    const owed = [...this.owedDrop ?? []].filter((id) => !listed.has(id));
    this.owedDrop = null;
    return this.drop(new Set([...owed, ...removed]));
  }

  private async drop(removed: Set<string>): Promise<RuntimeKey[]> {
    if (removed.size === 0) return [];
    let reply: unknown;
    try {
      if (this.client.status !== "ready") throw new Error("not connected");
      reply = await this.client.eval(DROP_SCRIPT, 1, this.keysKey, this.channel, ...removed);
    } catch (e) {
      const owed = this.owedDrop;
      this.owedDrop = owed === null ? removed : new Set([...owed, ...removed]);
      this.conns.failed(this.cfg.url, e);
      throw new GatewayError("store_unavailable", {}, { cause: e });
    }
    const flat = Array.isArray(reply) ? reply.map(String) : [];
    const deleted: RuntimeKey[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) deleted.push([flat[i]!, flat[i + 1]!]);
    for (const [digest] of deleted) this.heard({ op: "unkey", digest });
    return deleted;
  }

  /** Runs a sweep owed since Redis could not be reached; it stays owed if it still cannot. */
  private async dropOwed(): Promise<void> {
    const removed = this.owedDrop;
    if (removed === null) return;
    this.owedDrop = null;
    try {
      logDeletedKeys(this.logger, await this.drop(removed));
    } catch (e) {
      this.logger.every(
        "auth-retain-owed",
        60_000,
        "warn",
        "runtime API keys of consumers removed from the config are still to delete",
        errorFields(e),
      );
    }
  }

  close(): void {
    clearInterval(this.timer);
    // The command connection is shared and outlives this store.
    this.client.off("ready", this.onClientReady);
    this.sub.disconnect();
  }

  private readonly onClientReady = (): void => {
    if (!this.syncWhenReady) return;
    this.syncWhenReady = false;
    void this.resync();
  };

  /** Runs `command` and publishes `change` in one transaction; applies it here at once. */
  private async write(
    change: Change,
    command: (m: ReturnType<Redis["multi"]>) => unknown,
  ): Promise<unknown> {
    let results: [Error | null, unknown][] | null;
    try {
      const m = this.client.multi();
      command(m);
      m.publish(this.channel, JSON.stringify(change));
      results = await m.exec();
    } catch (e) {
      this.conns.failed(this.cfg.url, e);
      throw new GatewayError("store_unavailable", {}, { cause: e });
    }
    const failed = results?.find(([err]) => err !== null)?.[0];
    if (!results || failed) {
      throw new GatewayError("store_unavailable", {}, { cause: failed ?? "transaction aborted" });
    }
    this.heard(change);
    return results[0]![1];
  }

  private heard(change: Change): void {
    this.heardDuringSync?.push(change);
    apply(this.view, change);
  }

  /** Reloads the mirror from the hashes, keeping changes heard meanwhile. */
  private async resync(): Promise<void> {
    if (this.client.status !== "ready") {
      this.syncWhenReady = true;
      return;
    }
    if (this.heardDuringSync) {
      this.syncAgain = true;
      return;
    }
    this.heardDuringSync = [];
    try {
      const [keys, revoked] = await Promise.all([
        this.client.hgetall(this.keysKey),
        this.client.hgetall(this.revokedKey),
      ]);
      const nowMs = this.now();
      const expired: string[] = [];
      this.view.keys.clear();
      for (const [digest, consumer] of Object.entries(keys)) this.view.keys.set(digest, consumer);
      this.view.revoked.clear();
      for (const [jti, exp] of Object.entries(revoked)) {
        const until = Number(exp) * 1000;
        if (until > nowMs) this.view.revoked.set(jti, until);
        else expired.push(jti);
      }
      for (const change of this.heardDuringSync) apply(this.view, change);
      if (expired.length) await this.client.hdel(this.revokedKey, ...expired);
      this.firstSync();
      void this.dropOwed();
    } catch (e) {
      this.conns.failed(this.cfg.url, e);
    } finally {
      this.heardDuringSync = null;
    }
    if (this.syncAgain) {
      this.syncAgain = false;
      await this.resync();
    }
  }
}

function apply(view: CredentialView, c: Change): void {
  if (c.op === "key") view.keys.set(c.digest, c.consumer);
  else if (c.op === "unkey") view.keys.delete(c.digest);
  else view.revoked.set(c.jti, c.exp * 1000);
}

function parseChange(text: string): Change | null {
  try {
    const c = JSON.parse(text);
    if (c?.op === "key" && typeof c.digest === "string" && typeof c.consumer === "string") return c;
    if (c?.op === "unkey" && typeof c.digest === "string") return c;
    if (c?.op === "revoke" && typeof c.jti === "string" && typeof c.exp === "number") return c;
  } catch {
    // Not ours: ignore.
  }
  return null;
}
