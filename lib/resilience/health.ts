/**
 * Active health checks of one upstream target: a GET of the configured path
 * every interval, over a connection of its own. A target turns unhealthy after
 * `unhealthy_threshold` failed checks in a row and healthy again after
 * `healthy_threshold` passes. Checks never overlap; `stop` ends the timer and
 * any check in flight.
 */
import type { HealthCheckConfig } from "./schema.ts";
import { parseTarget, TargetPool } from "../proxy/http1/pool.ts";
import { exchange } from "../proxy/http1/client.ts";
import { safeHeaderValue } from "../proxy/header_edits.ts";

export interface CheckResult {
  /** Clock ms when the check ended. */
  at: number;
  ok: boolean;
  status: number | null;
  error: string | null;
  ms: number;
}

export type HealthListener = (healthy: boolean, last: CheckResult) => void;

export class HealthChecker {
  healthy = true;
  last: CheckResult | null = null;
  private passes = 0;
  private fails = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private stopped = false;
  private readonly pool: TargetPool;
  private readonly expected: ReadonlySet<number>;
  private readonly headerBlock: string;

  constructor(
    url: string,
    private readonly config: HealthCheckConfig,
    private readonly now: () => number,
    private readonly onChange: HealthListener,
  ) {
    this.pool = new TargetPool(parseTarget(url), { maxIdle: 1, idleTimeoutMs: 60_000 });
    this.expected = new Set(config.expected_statuses);
    this.headerBlock = this.head();
  }

  /** Starts checking at once, then every interval. */
  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort?.abort();
    await this.running;
    this.pool.close();
  }

  /** Runs one check now and applies it to the target's state. */
  async check(): Promise<CheckResult> {
    const c = this.config;
    const started = performance.now();
    this.abort = new AbortController();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await exchange(this.pool, {
        method: "GET",
        path: c.path,
        headerBlock: this.headerBlock,
        body: null,
        bodyLength: null,
      }, {
        connectTimeoutMs: c.timeout_ms,
        firstByteTimeoutMs: c.timeout_ms,
        requestTimeoutMs: c.timeout_ms,
        // The deadline counts from the start: a slow connect leaves the answer only what is left.
        startedAt: started,
        signal: this.abort.signal,
      });
      status = res.status;
      if (res.body instanceof ReadableStream) await res.body.cancel().catch(() => {});
    } catch (e) {
      error = (e as Error)?.message ?? String(e);
    } finally {
      this.abort = null;
    }
    const ok = status !== null && this.expected.has(status);
    const result: CheckResult = {
      at: this.now(),
      ok,
      status,
      error: error ?? (ok ? null : `unexpected status ${status}`),
      ms: Math.round(performance.now() - started),
    };
    if (!this.stopped) this.apply(result);
    return result;
  }

  private apply(r: CheckResult): void {
    this.last = r;
    if (r.ok) {
      this.fails = 0;
      this.passes++;
      if (!this.healthy && this.passes >= this.config.healthy_threshold) {
        this.healthy = true;
        this.onChange(true, r);
      }
    } else {
      this.passes = 0;
      this.fails++;
      if (this.healthy && this.fails >= this.config.unhealthy_threshold) {
        this.healthy = false;
        this.onChange(false, r);
      }
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.check().then(() => {
        this.running = null;
        this.schedule(this.config.interval_s * 1000);
      });
    }, delayMs);
  }

  private head(): string {
    const host = safeHeaderValue(this.config.host ?? this.pool.target.authority);
    return `host: ${host}\r\nuser-agent: gateway-health-check\r\n`;
  }
}
