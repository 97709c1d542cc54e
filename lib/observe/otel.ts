/**
 * OpenTelemetry through Deno's built-in exporter (`OTEL_DENO=true`). Every
 * request gets a server span continuing the caller's `traceparent`: Deno opens
 * it for requests `Deno.serve` handles (TLS listeners), the gateway's own
 * HTTP/1.1 server opens it through the same API (`tracedHandler`). The gateway
 * adopts that span as its hop, so the trace id in the access log and the
 * parent id sent upstream are the exported span's, and names and annotates it
 * with what the gateway decided.
 *
 * Without `OTEL_DENO=true` nothing here runs per request, and the OpenTelemetry
 * API is not even loaded.
 */
import type { Span } from "@opentelemetry/api";
import type { RequestContext } from "../core/context.ts";
import { flagBits, flagsHex, parseTraceparent, type TraceContext } from "./trace.ts";
import type { IncomingRequest } from "../server/incoming.ts";
import {
  compileQueryRedactor,
  DEFAULT_REDACTED_QUERY,
  type QueryRedactor,
  redactUrl,
} from "./redact_query.ts";

type Handler<I> = (req: IncomingRequest, info: I) => Promise<Response>;

/** Spans the gateway opened itself, and so must end (Deno ends those it opens). */
const opened = new WeakSet<Span>();

/** Whether Deno exports telemetry in this process (read once, at start). */
export const otelEnabled: boolean = (() => {
  try {
    return Deno.env.get("OTEL_DENO") === "true";
  } catch {
    return false;
  }
})();

const otel = otelEnabled ? await import("@opentelemetry/api") : null;

/** The server span of the request being handled, if telemetry is on. */
export function activeSpan(): Span | undefined {
  return otel?.trace.getActiveSpan();
}

/** Makes the gateway's trace context that of `span` (same trace, the span as this hop). */
export function adoptSpan(t: TraceContext, span: Span): void {
  const sc = span.spanContext();
  if (sc.traceId !== t.traceId) {
    // Deno started a new trace (no valid traceparent came in): the caller's state does not apply.
    t.traceId = sc.traceId;
    t.parentId = null;
    t.state = null;
    t.flags = flagsHex(sc.traceFlags);
  } else {
    // The sampler decides `sampled` only; whether the trace id is random is the caller's word.
    t.flags = flagsHex((sc.traceFlags & 1) | (flagBits(t) & 2));
  }
  t.spanId = sc.spanId;
}

/** Names the span after the route and records the gateway's decisions on it. */
export function annotateSpan(
  span: Span,
  ctx: RequestContext,
  bytesOut: number,
  redact: QueryRedactor,
): void {
  // Replaces the URL the span opened with (Deno's own for Deno.serve listeners, with every
  // credential in its query) by one masked like the access log's.
  span.setAttribute("url.full", redactUrl(ctx.incoming.url, redact));
  const route = ctx.route?.name;
  if (route !== undefined) {
    span.updateName(`${ctx.method} ${route}`);
    span.setAttribute("gateway.route", route);
  }
  span.setAttribute("gateway.request_id", ctx.requestId);
  span.setAttribute("http.response.body.size", bytesOut);
  if (ctx.upstreamName !== null) span.setAttribute("gateway.upstream", ctx.upstreamName);
  if (ctx.upstreamTarget !== null) span.setAttribute("gateway.upstream.target", ctx.upstreamTarget);
  if (ctx.upstreamMs >= 0) span.setAttribute("gateway.upstream.duration_ms", ctx.upstreamMs);
  if (ctx.attempts > 1) span.setAttribute("gateway.upstream.attempts", ctx.attempts);
  if (ctx.consumer !== null) span.setAttribute("gateway.consumer", ctx.consumer.id);
  if (ctx.errorCode !== null) span.setAttribute("gateway.error_code", ctx.errorCode);
  if (ctx.rateLimit !== null) span.setAttribute("gateway.rate_limit", ctx.rateLimit);
  if (ctx.cacheStatus !== null) span.setAttribute("gateway.cache", ctx.cacheStatus);
}

/** Before the route's plan is known: the names masked by default (the plan's are added at the end). */
const DEFAULT_REDACTOR = compileQueryRedactor(DEFAULT_REDACTED_QUERY);

/** Runs `handler` inside a server span of its own, for servers Deno does not instrument. */
export function tracedHandler<I>(handler: Handler<I>): Handler<I> {
  if (otel === null) return handler;
  const { context, ROOT_CONTEXT, SpanKind, trace } = otel;
  const tracer = trace.getTracer("gateway");
  return (req, info) => {
    const incoming = req.headers.get("traceparent");
    const t = parseTraceparent(incoming, req.headers.get("tracestate"));
    const parent = t.parentId === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, {
      traceId: t.traceId,
      spanId: t.parentId,
      traceFlags: flagBits(t),
      isRemote: true,
    });
    const span = tracer.startSpan(req.method, {
      kind: SpanKind.SERVER,
      attributes: {
        "http.request.method": req.method,
        "url.full": redactUrl(req.url, DEFAULT_REDACTOR),
      },
    }, parent);
    opened.add(span);
    return context.with(trace.setSpan(parent, span), () => handler(req, info));
  };
}

/** Ends a span the gateway opened, once the response is done. */
export function endSpan(span: Span, status: number): void {
  if (!opened.has(span)) return;
  opened.delete(span);
  span.setAttribute("http.response.status_code", status);
  if (status >= 500) span.setStatus({ code: otel!.SpanStatusCode.ERROR });
  span.end();
}
