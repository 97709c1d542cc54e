/**
 * An upstream at run time: its targets with their connection pools, the
 * balancer, and the effective timeouts. Built once per plan.
 */
import type { UpstreamConfig } from "./schema.ts";
import type { TargetPool } from "./http1/pool.ts";
import type { PoolRegistry } from "./pools.ts";
import {
  type Balanced,
  type Balancer,
  hash,
  leastConn,
  random,
  roundRobin,
} from "../resilience/balance.ts";
import { compileRequestKey, type RequestKey } from "../core/request_key.ts";
import { safeHeaderValue } from "./header_edits.ts";

export interface Timeouts {
  connectMs: number;
  firstByteMs: number;
  requestMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 5_000,
  firstByteMs: 60_000,
  requestMs: Infinity,
};

export type CircuitState = "closed" | "open" | "half_open";

export class UpstreamTarget implements Balanced {
  /** Set by health checks and outlier ejection; read by the balancer, `/upstreams` and metrics. */
  healthy = true;
  /** Set by the circuit breaker; read by `/upstreams` and metrics. */
  circuit: CircuitState = "closed";

  constructor(
    readonly id: string,
    readonly pool: TargetPool,
    readonly weight: number,
  ) {}
  get inFlight(): number {
    return this.pool.active;
  }
  /** Whether the balancer may send here; health checks and breakers narrow this. */
  available(_nowMono: number): boolean {
    return true;
  }
}

export class Upstream {
  readonly targets: UpstreamTarget[];
  readonly balancer: Balancer<UpstreamTarget>;
  readonly timeouts: Timeouts;
  readonly hashKey: RequestKey | null;
  /** Static header lines configured on the upstream. */
  readonly extraBlock: string;

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
    private readonly pools: PoolRegistry,
  ) {
    this.targets = config.targets.map((t) =>
      new UpstreamTarget(
        t.url,
        pools.acquire(t.url, {
          maxIdle: config.keepalive.max_idle,
          idleTimeoutMs: config.keepalive.idle_timeout_s * 1000,
        }),
        t.weight,
      )
    );
    this.balancer = makeBalancer(config, this.targets);
    this.hashKey = config.balance === "hash" ? compileRequestKey(config.hash_on) : null;
    this.timeouts = {
      connectMs: config.timeout.connect_ms ?? DEFAULT_TIMEOUTS.connectMs,
      firstByteMs: config.timeout.first_byte_ms ?? DEFAULT_TIMEOUTS.firstByteMs,
      requestMs: config.timeout.request_ms ?? DEFAULT_TIMEOUTS.requestMs,
    };
    this.extraBlock = Object.entries(config.headers)
      .map(([k, v]) => `${k.toLowerCase()}: ${safeHeaderValue(v)}\r\n`).join("");
  }

  dispose(): void {
    for (const t of this.targets) this.pools.release(t.pool);
  }
}

function makeBalancer(c: UpstreamConfig, targets: UpstreamTarget[]): Balancer<UpstreamTarget> {
  switch (c.balance) {
    case "least_conn":
      return leastConn(targets);
    case "random":
      return random(targets);
    case "hash":
      return hash(targets, roundRobin(targets));
    default:
      return roundRobin(targets);
  }
}
