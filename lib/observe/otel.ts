/**
 * OpenTelemetry through Deno's built-in exporter (`OTEL_DENO=true`). Deno
 * opens a server span for every request `Deno.serve` handles, continuing the
 * caller's `traceparent`; the gateway adopts that span as its hop, so the
 * trace id in the access log and the parent id sent upstream are the exported
 * span's, and names and annotates it with what the gateway decided.
 *
 * Without `OTEL_DENO=true` nothing here runs per request, and the OpenTelemetry
 * API is not even loaded.
 */
import type { Span } from "@opentelemetry/api";
import type { RequestContext } from "../core/context.ts";
import type { TraceContext } from "./trace.ts";

/** Whether Deno exports telemetry in this process (read once, at start). */
export const otelEnabled: boolean = (() => {
  try {
    return Deno.env.get("OTEL_DENO") === "true";
  } catch {
    return false;
  }
})();

const otelTrace = otelEnabled ? (await import("@opentelemetry/api")).trace : null;

/** The span Deno opened for the request being handled, if telemetry is on. */
export function activeSpan(): Span | undefined {
  return otelTrace?.getActiveSpan();
}

/** Makes the gateway's trace context that of `span` (same trace, the span as this hop). */
export function adoptSpan(t: TraceContext, span: Span): void {
  const sc = span.spanContext();
  if (sc.traceId !== t.traceId) {
    // Deno started a new trace (no valid traceparent came in): the caller's state does not apply.
    t.traceId = sc.traceId;
    t.parentId = null;
    t.state = null;
  }
  t.spanId = sc.spanId;
  t.flags = (sc.traceFlags & 1) === 1 ? "01" : "00";
}

/** Names the span after the route and records the gateway's decisions on it. */
export function annotateSpan(span: Span, ctx: RequestContext, bytesOut: number): void {
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
