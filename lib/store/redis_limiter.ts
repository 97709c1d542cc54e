/**
 * Limiter state in Redis, shared by every gateway instance that points at it.
 * A decision is one EVALSHA of the limiter script, shared with the decisions
 * that queued behind a full window of calls in flight (ioredis sends EVAL the first
 * time on a connection and again after NOSCRIPT, for example after a Redis
 * restart or SCRIPT FLUSH). The client is the shared one from `RedisConnections`:
 * short command timeout, no offline queue, reconnecting by itself.
 */
import type { Redis } from "ioredis";
import type { RedisConnections } from "./redis.ts";
import type { RedisConfig } from "./schema.ts";
import { type LimiterStore, type StoredLimit, StoreUnavailableError } from "./limiter_store.ts";
import { type Verdict, windowBounds, type WindowSpec } from "../ratelimit/algorithms/index.ts";
import { LIMITER_SCRIPT } from "./limiter_lua.ts";

const COMMAND = "gatewayRateLimit";

/**
 * Script calls in flight at once. Below it a decision is sent at once; above
 * it decisions queue and the next call carries all of them, so a busy gateway
 * pays one round trip, one command and one script run for many decisions.
 */
const MAX_CALLS_IN_FLIGHT = 4;
/** Decisions in one call at most (one script run holds Redis for all of them). */
const MAX_BATCH = 256;

interface Pending {
  limits: readonly StoredLimit[];
  keys: readonly string[];
  now: number;
  resolve: (v: Verdict[]) => void;
  reject: (e: unknown) => void;
  /** When it queued behind full calls (monotonic ms); Infinity when sent at once. */
  queuedAt: number;
}

type ScriptCaller = (...args: (string | number)[]) => Promise<number[]>;

export class RedisLimiterStore implements LimiterStore {
  private readonly call: ScriptCaller;
  private readonly keyPrefix: string;
  private readonly encoded = new WeakMap<StoredLimit, EncodedLimit>();
  private readonly noncePrefix = crypto.randomUUID().slice(0, 8);
  private calls = 0;
  private readonly queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    client: Redis,
    private readonly config: RedisConfig,
    private readonly connections: RedisConnections,
    /** Milliseconds from any origin, for how long queued decisions have waited. */
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    // The client is shared: define the command once for all plans that use it.
    if (typeof (client as unknown as Record<string, unknown>)[COMMAND] !== "function") {
      client.defineCommand(COMMAND, { lua: LIMITER_SCRIPT });
    }
    const fn = (client as unknown as Record<string, ScriptCaller>)[COMMAND]!;
    this.call = fn.bind(client);
    this.keyPrefix = `${config.prefix}rl:`;
  }

  decide(
    limits: readonly StoredLimit[],
    keys: readonly string[],
    now: number,
  ): Promise<Verdict[]> {
    return new Promise((resolve, reject) => {
      const queued = this.inFlight >= MAX_CALLS_IN_FLIGHT;
      const queuedAt = queued ? this.monotonic() : Infinity;
      this.queue.push({ limits, keys, now, resolve, reject, queuedAt });
      if (!queued) this.send();
    });
  }

  /** Sends queued decisions in one script call; when it returns, whatever queued meanwhile. */
  private send(): void {
    this.failOverdue();
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    const keys: string[] = [];
    const argv: (string | number)[] = [
      batch.length,
      this.noncePrefix + (this.calls++).toString(36),
    ];
    for (const d of batch) {
      argv.push(d.now, d.limits.length);
      for (let i = 0; i < d.limits.length; i++) {
        const e = this.encodedOf(d.limits[i]!);
        keys.push(e.keyPrefix + d.keys[i]!);
        if (e.window === null) argv.push(...e.args);
        else {
          const [start, end] = windowBounds(e.window, d.now);
          argv.push(e.args[0]!, e.args[1]!, e.args[2]!, start, end, e.args[3]!);
        }
      }
    }
    this.inFlight++;
    this.call(keys.length, ...keys, ...argv).then((reply) => {
      let offset = 0;
      for (const d of batch) {
        d.resolve(verdictsOf(reply, offset, d.limits.length));
        offset += d.limits.length * 5;
      }
    }, (e) => {
      this.connections.failed(this.config.url, e);
      const error = new StoreUnavailableError("the Redis limiter store did not answer", {
        cause: e,
      });
      for (const d of batch) d.reject(error);
      // What queued meanwhile would go down the same connection, behind the call that
      // failed: sent, it waits out a timeout of its own, and under load the queue outgrows
      // what the calls in flight can carry, so the waits grow without bound.
      for (const d of this.queue.splice(0)) d.reject(error);
    }).finally(() => {
      this.inFlight--;
      while (this.queue.length > 0 && this.inFlight < MAX_CALLS_IN_FLIGHT) this.send();
    });
  }

  /**
   * Fails the decisions that have already waited `timeout_ms` in the queue. A Redis
   * that answers each call just in time never fails one, and the queue drained 1,024
   * decisions a round: the last of 3,000 waited three rounds, and more with more.
   * The queue is in arrival order, so the overdue ones are at its head.
   */
  private failOverdue(): void {
    const head = this.queue[0];
    if (head === undefined || head.queuedAt === Infinity) return;
    const cutoff = this.monotonic() - this.config.timeout_ms;
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.queuedAt <= cutoff) n++;
    if (n === 0) return;
    const error = new StoreUnavailableError(
      `the Redis limiter store did not take a decision within ${this.config.timeout_ms} ms`,
    );
    this.connections.failed(this.config.url, error);
    for (const d of this.queue.splice(0, n)) d.reject(error);
  }

  /** What the script needs of a limit, encoded once (the key prefix and the static arguments). */
  private encodedOf(limit: StoredLimit): EncodedLimit {
    let e = this.encoded.get(limit);
    if (e === undefined) {
      e = encode(limit, this.keyPrefix);
      this.encoded.set(limit, e);
    }
    return e;
  }
}

interface EncodedLimit {
  keyPrefix: string;
  /** kind, cost, shadow and the three parameters; for fixed windows, kind, cost, shadow, limit. */
  args: string[];
  /** Fixed windows: their bounds depend on `now`. */
  window: WindowSpec | null;
}

/** The script's name for the algorithm and its parameters (see limiter_lua.ts). */
function encode(limit: StoredLimit, keyPrefix: string): EncodedLimit {
  const spec = limit.algorithm.spec;
  const head = (kind: string) => [kind, String(limit.cost), limit.shadow ? "1" : "0"];
  const params = (...p: number[]) => p.map(String);
  const base = { keyPrefix: `${keyPrefix}${limit.id}:`, window: null };
  switch (spec.kind) {
    case "token_bucket":
      return { ...base, args: [...head("tb"), ...params(spec.rate, spec.perMs, spec.burst)] };
    case "leaky_bucket": {
      const kind = spec.mode === "shape" ? "ls" : "lp";
      return { ...base, args: [...head(kind), ...params(spec.rate, spec.perMs, spec.capacity)] };
    }
    case "fixed_window":
      return { ...base, args: [...head("fw"), String(spec.limit)], window: spec.window };
    case "sliding_window":
      return { ...base, args: [...head("sw"), ...params(spec.perMs, spec.limit, 0)] };
    case "sliding_log":
      return { ...base, args: [...head("sl"), ...params(spec.perMs, spec.limit, 0)] };
  }
}

function verdictsOf(reply: number[], offset: number, n: number): Verdict[] {
  const out = new Array<Verdict>(n);
  for (let i = 0; i < n; i++) {
    const o = offset + i * 5;
    out[i] = {
      allowed: reply[o] === 1,
      remaining: reply[o + 1]!,
      resetMs: reply[o + 2]!,
      retryAfterMs: reply[o + 3]!,
      delayMs: reply[o + 4]!,
    };
  }
  return out;
}
