/**
 * The access log: one JSON line per request, written when the response ends.
 * Successful requests (status below 400) are sampled at `sample`; refusals and
 * errors are always written.
 */
import type { RequestContext } from "../core/context.ts";
import type { LogSink } from "./log_sink.ts";
import type { QueryRedactor } from "./redact_query.ts";
import { callerTraceId } from "./trace.ts";

export interface AccessLogOptions {
  sink: LogSink;
  /** Fraction of successful requests written, 0 to 1. */
  sample: number;
  redactQuery: QueryRedactor;
  /** Source of randomness for sampling; injectable for tests. */
  random?: () => number;
}

/** A field's value is null when it does not apply (no route, no upstream, no consumer). */
export interface AccessLogRecord {
  time: string;
  request_id: string;
  trace_id: string | null;
  client_ip: string;
  method: string;
  host: string;
  path: string;
  listener: string;
  route: string | null;
  upstream: string | null;
  upstream_target: string | null;
  status: number;
  bytes_in: number;
  bytes_out: number;
  latency_ms: number;
  upstream_latency_ms: number | null;
  attempts: number;
  consumer: string | null;
  rate_limit: string | null;
  cache: string | null;
  error_code: string | null;
  user_agent: string | null;
  /** Set when the client went away before the response body was sent in full. */
  aborted?: true;
}

export class AccessLog {
  private readonly sink: LogSink;
  private readonly sample: number;
  private readonly redactQuery: QueryRedactor;
  private readonly random: () => number;

  constructor(o: AccessLogOptions) {
    this.sink = o.sink;
    this.sample = o.sample;
    this.redactQuery = o.redactQuery;
    this.random = o.random ?? Math.random;
  }

  /** Whether a request with this status is written. */
  wants(status: number): boolean {
    return status >= 400 || this.sample >= 1 || (this.sample > 0 && this.random() < this.sample);
  }

  write(
    ctx: RequestContext,
    status: number,
    bytesOut: number,
    latencyMs: number,
    aborted: boolean,
  ): void {
    this.sink.write(JSON.stringify(this.record(ctx, status, bytesOut, latencyMs, aborted)));
  }

  record(
    ctx: RequestContext,
    status: number,
    bytesOut: number,
    latencyMs: number,
    aborted: boolean,
  ): AccessLogRecord {
    const r: AccessLogRecord = {
      time: new Date(ctx.now).toISOString(),
      request_id: ctx.requestId,
      trace_id: ctx.trace !== null
        ? ctx.trace.traceId
        : callerTraceId(ctx.headers.get("traceparent")),
      client_ip: ctx.clientIp,
      method: ctx.method,
      host: ctx.host,
      path: ctx.path + this.redactQuery(ctx.query),
      listener: ctx.listener.name,
      route: ctx.route?.name ?? null,
      upstream: ctx.upstreamName,
      upstream_target: ctx.upstreamTarget,
      status,
      bytes_in: ctx.bytesIn,
      bytes_out: bytesOut,
      latency_ms: roundMs(latencyMs),
      upstream_latency_ms: ctx.upstreamMs >= 0 ? roundMs(ctx.upstreamMs) : null,
      attempts: ctx.attempts,
      consumer: ctx.consumer?.id ?? null,
      rate_limit: ctx.rateLimit,
      cache: ctx.cacheStatus,
      error_code: ctx.errorCode,
      user_agent: ctx.headers.get("user-agent"),
    };
    if (aborted) r.aborted = true;
    return r;
  }
}

/** Milliseconds to the microsecond. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
