/**
 * What the server does around every request for metrics, the access log and
 * tracing. Built once per plan from `observe:`; the per-request work is a few
 * field updates, one map lookup and, for logged requests, the log line.
 *
 * A request is recorded when its response ends. A response whose length is
 * known and small is written in one go, so it is recorded when the handler
 * returns; a streamed or large body is metered and recorded at its last byte;
 * a switch to another protocol when its session ends (upgrade_sessions.ts).
 */
import type { RequestContext } from "../core/context.ts";
import { responseFields } from "../core/parsed_response.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { AccessLog } from "./access_log.ts";
import { meterStream, type StreamEnd } from "./body_meter.ts";
import { relayBytes } from "../core/byte_relay.ts";
import { bodySizeOf } from "./body_size.ts";
import { activeSpan, adoptSpan, annotateSpan, endSpan } from "./otel.ts";
import {
  compileQueryRedactor,
  DEFAULT_REDACTED_QUERY,
  type QueryRedactor,
} from "./redact_query.ts";
import { RequestMetrics } from "./request_metrics.ts";
import { awaitSessionEnd } from "./upgrade_sessions.ts";
import { findInterpolated, type Interpolated } from "./redact_config.ts";
import type { Span } from "@opentelemetry/api";
import { monoNow } from "../core/clock.ts";

/** Bodies up to this size are timed to the handler's return; larger ones to their last byte. */
const TIMED_TO_LAST_BYTE = 64 * 1024;

export class RequestObserver {
  constructor(
    private readonly metrics: RequestMetrics,
    private readonly accessLog: AccessLog | null,
    private readonly consumerLabel: boolean,
    /** Config values that came from `${VAR}`, masked by the admin API's /config. */
    readonly interpolated: readonly Interpolated[],
    /** Masks credentials in a query before it leaves in a trace span. */
    private readonly redactQuery: QueryRedactor = compileQueryRedactor(DEFAULT_REDACTED_QUERY),
  ) {}

  /** Called once the request context exists, before the plan runs. */
  begin(ctx: RequestContext): void {
    this.metrics.inFlight.value++;
    // What the listener does not count (a chunked body, a runtime-parsed one) is counted as read.
    if (ctx.body instanceof ReadableStream && ctx.incoming.bodyReceived() === null) {
      ctx.body = relayBytes(ctx.body, { chunk: (n) => (ctx.bytesIn += n) });
    }
    const span = activeSpan();
    // Without tracing the span is exported but not this hop's: nothing sends its id upstream.
    if (span !== undefined && ctx.trace !== null) adoptSpan(ctx.trace, span);
  }

  /**
   * Called with the final response; returns it, or the same response with a
   * metered body. `release(token)` is called once: when a metered body ends,
   * else at once (a WebSocket session is not waited for). What the request
   * was served with (its plan, the access log) must outlive its body.
   */
  end<T>(ctx: RequestContext, res: Response, token?: T, release?: (token: T) => void): Response {
    const status = res.status;
    const span = activeSpan();
    if (status < 200 || status === 204 || status === 304 || ctx.method === "HEAD") {
      if (status === 101) {
        awaitSessionEnd(ctx, (bytesIn, bytesOut) => {
          ctx.bytesIn = bytesIn;
          this.record(ctx, status, bytesOut, false, span);
        });
      } else this.record(ctx, status, 0, false, span);
      release?.(token!);
      return res;
    }
    const size = bodySizeOf(res) ?? contentLength(res);
    // Read only now: `res.body` turns a body held whole into a stream.
    const body = size !== null && size <= TIMED_TO_LAST_BYTE ? undefined : res.body;
    if (body === undefined || body === null) {
      this.record(ctx, status, body === null ? 0 : size!, false, span);
      release?.(token!);
      return res;
    }
    const metered = meterStream(body, (bytes: number, how: StreamEnd) => {
      this.record(ctx, status, bytes, how !== "done", span);
      release?.(token!);
    });
    return new Response(metered, res);
  }

  private record(
    ctx: RequestContext,
    status: number,
    bytesOut: number,
    aborted: boolean,
    span: Span | undefined,
  ): void {
    const ms = monoNow() - ctx.startMono;
    this.metrics.inFlight.value--;
    // A switch of protocols has its session's bytes already.
    const received = status === 101 ? null : ctx.incoming.bodyReceived();
    if (received !== null) ctx.bytesIn = received;
    const consumer = this.consumerLabel ? configuredId(ctx) : "";
    this.metrics.record(ctx, status, consumer, ms / 1000, bytesOut);
    if (this.accessLog?.wants(status)) this.accessLog.write(ctx, status, bytesOut, ms, aborted);
    if (span !== undefined) {
      annotateSpan(span, ctx, bytesOut, this.redactQuery);
      endSpan(span, status);
    }
  }
}

/** The consumer's id if the config lists it: unlisted subjects are unbounded label values. */
function configuredId(ctx: RequestContext): string {
  const c = ctx.consumer;
  return c !== null && c.configured ? c.id : "";
}

function contentLength(res: Response): number | null {
  const v = responseFields(res).get("content-length");
  return v !== null && /^\d+$/.test(v) ? Number(v) : null;
}

/** Builds the plan's observer; opens (or shares) the access log destination. */
export async function createObserver(b: BuildContext): Promise<RequestObserver> {
  const o = b.config.observe;
  const metrics = new RequestMetrics(b.deps.metrics);
  let accessLog: AccessLog | null = null;
  const a = o.access_log;
  const redactQuery = compileQueryRedactor([
    ...DEFAULT_REDACTED_QUERY,
    ...a.redact_query,
    ...credentialQueryNames(b),
  ]);
  if (a.enabled) {
    const destination = a.path === "stdout" || a.path === "stderr" ? a.path : b.resolvePath(a.path);
    let sink;
    try {
      sink = await b.deps.accessLogs.acquire(destination, a.flush_ms);
    } catch (e) {
      b.fail(
        ["observe", "access_log", "path"],
        `cannot open the access log ${destination}: ${(e as Error).message}`,
      );
    }
    b.onDispose(() => b.deps.accessLogs.release(sink));
    accessLog = new AccessLog({ sink, sample: a.sample, redactQuery });
  }
  return new RequestObserver(
    metrics,
    accessLog,
    o.metrics.consumer_label,
    findInterpolated(b.source),
    redactQuery,
  );
}

/** Query parameters that auth providers read credentials from (`auth.*.query`). */
function credentialQueryNames(b: BuildContext): string[] {
  const out: string[] = [];
  for (const p of Object.values(b.config.auth)) {
    if ("query" in p && typeof p.query === "string") out.push(p.query);
  }
  return out;
}
