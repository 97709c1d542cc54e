/**
 * Circuit state shared by every instance through Redis: when one instance opens
 * a circuit it writes the end of the open period under the target's key (with
 * that expiry), and every instance polls the keys of its shared breakers, so
 * all of them open together instead of each paying for its own failures.
 * While Redis is unreachable each instance keeps its local breakers, and an
 * opening it could not write is written at the next poll, if still open then.
 */
import type { Redis, RedisConnections } from "../store/redis.ts";
import type { Clock } from "../core/clock.ts";
import type { CircuitBreaker } from "./breaker.ts";

export const SHARED_POLL_MS = 1_000;

export class SharedCircuits {
  private readonly watched = new Map<string, CircuitBreaker>();
  /** Openings whose write failed: key -> end of the open period. */
  private readonly unpublished = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private polling: Promise<void> | null = null;

  constructor(
    private readonly client: Redis,
    private readonly url: string,
    private readonly connections: RedisConnections,
    private readonly clock: Clock,
    private readonly pollMs = SHARED_POLL_MS,
  ) {}

  watch(key: string, breaker: CircuitBreaker): void {
    this.watched.set(key, breaker);
    if (this.timer === undefined) {
      this.timer = setInterval(() => {
        this.polling ??= this.poll().finally(() => (this.polling = null));
      }, this.pollMs);
    }
  }

  /**
   * Stops watching `key` for `breaker`. A reload that changes the breaker's
   * settings watches the key with the new one before the old one is disposed.
   */
  unwatch(key: string, breaker: CircuitBreaker): void {
    if (this.watched.get(key) !== breaker) return;
    this.watched.delete(key);
    this.unpublished.delete(key);
    if (this.watched.size === 0) this.stopTimer();
  }

  /** Tells the other instances that this one opened the circuit until `until`. */
  publish(key: string, until: number): void {
    const ttl = Math.ceil(until - this.clock.now());
    if (ttl <= 0) return;
    this.client.set(key, String(until), "PX", ttl).then(
      () => {
        if ((this.unpublished.get(key) ?? Infinity) <= until) this.unpublished.delete(key);
      },
      (e: unknown) => {
        // A Redis blip at the moment of opening must not keep the others paying for it.
        const later = (this.unpublished.get(key) ?? 0) > until;
        if (this.watched.has(key) && !later) this.unpublished.set(key, until);
        this.connections.failed(this.url, e);
      },
    );
  }

  /** Reads every shared key once and opens the breakers another instance opened. */
  async poll(): Promise<void> {
    for (const [key, until] of this.unpublished) this.publish(key, until);
    const keys = [...this.watched.keys()];
    if (keys.length === 0) return;
    let values: (string | null)[];
    try {
      values = await this.client.mget(...keys);
    } catch (e) {
      this.connections.failed(this.url, e);
      return;
    }
    const now = this.clock.now();
    keys.forEach((key, i) => {
      const until = Number(values[i]);
      if (values[i] !== null && Number.isFinite(until)) {
        this.watched.get(key)?.openRemotely(until, now);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopTimer();
    await this.polling;
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
