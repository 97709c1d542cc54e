/**
 * Limiter state in Redis, shared by every gateway instance that points at it.
 * One decision is one EVALSHA of the limiter script (ioredis sends EVAL the first
 * time on a connection and again after NOSCRIPT, for example after a Redis
 * restart or SCRIPT FLUSH). The client is the shared one from `RedisConnections`:
 * short command timeout, no offline queue, reconnecting by itself.
 */
import type { Redis } from "ioredis";
import type { RedisConnections } from "./redis.ts";
import type { RedisConfig } from "./schema.ts";
import { type LimiterStore, type StoredLimit, StoreUnavailableError } from "./limiter_store.ts";
import { type AlgorithmSpec, type Verdict, windowBounds } from "../ratelimit/algorithms/index.ts";
import { LIMITER_SCRIPT } from "./limiter_lua.ts";

const COMMAND = "gatewayRateLimit";

type ScriptCaller = (...args: (string | number)[]) => Promise<number[]>;

export class RedisLimiterStore implements LimiterStore {
  private readonly call: ScriptCaller;
  private readonly keyPrefix: string;
  private readonly noncePrefix = crypto.randomUUID().slice(0, 8);
  private sequence = 0;

  constructor(
    client: Redis,
    private readonly config: RedisConfig,
    private readonly connections: RedisConnections,
  ) {
    // The client is shared: define the command once for all plans that use it.
    if (typeof (client as unknown as Record<string, unknown>)[COMMAND] !== "function") {
      client.defineCommand(COMMAND, { lua: LIMITER_SCRIPT });
    }
    const fn = (client as unknown as Record<string, ScriptCaller>)[COMMAND]!;
    this.call = fn.bind(client);
    this.keyPrefix = `${config.prefix}rl:`;
  }

  async decide(
    limits: readonly StoredLimit[],
    keys: readonly string[],
    now: number,
  ): Promise<Verdict[]> {
    const n = limits.length;
    const args: (string | number)[] = [n];
    for (let i = 0; i < n; i++) args.push(`${this.keyPrefix}${limits[i]!.id}:${keys[i]!}`);
    args.push(now, `${this.noncePrefix}${(this.sequence++).toString(36)}`);
    for (const limit of limits) {
      const [kind, p1, p2, p3] = scriptArgs(limit.algorithm.spec, now);
      args.push(kind, limit.cost, limit.shadow ? 1 : 0, p1, p2, p3);
    }
    let reply: number[];
    try {
      reply = await this.call(...args);
    } catch (e) {
      this.connections.failed(this.config.url, e);
      throw new StoreUnavailableError("the Redis limiter store did not answer", { cause: e });
    }
    const out = new Array<Verdict>(n);
    for (let i = 0; i < n; i++) {
      const o = i * 5;
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
}

/**
 * Waits until the client is connected, at most `timeoutMs`. Without an offline
 * queue, commands sent before the connection is up fail: a plan waits for it
 * once at build so that the first requests are limited, not let through.
 * Returns false if Redis did not answer in time (requests then follow on_error).
 */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === "ready") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      client.off("ready", onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.once("ready", onReady);
  });
}

/** The script's name for the algorithm and its three parameters. */
function scriptArgs(spec: AlgorithmSpec, now: number): [string, number, number, number] {
  switch (spec.kind) {
    case "token_bucket":
      return ["tb", spec.rate, spec.perMs, spec.burst];
    case "leaky_bucket":
      return [spec.mode === "shape" ? "ls" : "lp", spec.rate, spec.perMs, spec.capacity];
    case "fixed_window": {
      const [start, end] = windowBounds(spec.window, now);
      return ["fw", start, end, spec.limit];
    }
    case "sliding_window":
      return ["sw", spec.perMs, spec.limit, 0];
    case "sliding_log":
      return ["sl", spec.perMs, spec.limit, 0];
  }
}
