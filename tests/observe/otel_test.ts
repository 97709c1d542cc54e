/**
 * OpenTelemetry end to end: the gateway runs as its own process with Deno's
 * built-in exporter on (`OTEL_DENO=true`) and exports over OTLP/HTTP (JSON) to
 * a collector stand-in on loopback. The exported server span continues the
 * caller's trace, is the parent the upstream sees, carries the gateway's
 * attributes, and has the trace id the access log records. With tracing
 * disabled the span is still exported, but the upstream gets the caller's fields.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGatewayProcess } from "./gateway_process.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

Deno.test("otel: the gateway's exported span joins the caller's trace and parents the upstream", async () => {
  const spans: OtlpSpan[] = [];
  const collector = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const body = await req.json();
      if (new URL(req.url).pathname === "/v1/traces") {
        for (const rs of body.resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
        }
      }
      return Response.json({});
    },
  );
  const up = startUpstream(() => new Response("traced"));
  const gw = await startGatewayProcess((port, adminPort) => `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: 2 }
observe: { access_log: { path: access.log, redact_query: [mine] } }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: traced-route, match: { path: /t }, upstream: a } ]
`, {
    OTEL_DENO: "true",
    OTEL_DENO_CONSOLE: "ignore",
    OTEL_SERVICE_NAME: "gateway-test",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.addr as Deno.NetAddr).port}`,
  });
  try {
    const res = await fetch(`${gw.url}/t?api_key=sekret-1&page=2&mine=sekret-2`, {
      // Sampled and random-trace-id (W3C Trace Context Level 2).
      headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03" },
    });
    assertEquals(await res.text(), "traced");
    // Deno flushes the exporter when the process exits.
    gw.child.kill("SIGTERM");
    assertEquals((await gw.child.status).code, 0);

    const upstreamParent = up.received[0]!.headers.get("traceparent")!.split("-");
    assertEquals(upstreamParent[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    // The span's sampler decides `sampled`; the random-trace-id bit stays the caller's.
    assertEquals(upstreamParent[3], "03");
    // The export was sent before the exit; the collector (this process) may not have read it
    // yet: waited for, up to 10 s.
    const exported = () => spans.find((s) => s.spanId === upstreamParent[2]);
    for (let i = 0; i < 500 && !exported(); i++) await new Promise((r) => setTimeout(r, 20));
    const span = exported();
    assertOk(span, `no exported span is the upstream's parent (${spans.length} spans exported)`);
    assertEquals(span.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assertEquals(span.parentSpanId, "00f067aa0ba902b7");
    assertEquals(span.name, "GET traced-route");
    const attrs = Object.fromEntries(
      span.attributes.map((a) => [a.key, Object.values(a.value)[0]]),
    );
    assertEquals(attrs["gateway.route"], "traced-route");
    assertEquals(attrs["gateway.upstream"], "a");
    assertEquals(attrs["gateway.upstream.target"], up.url);
    // Credentials in the query are masked as in the access log: the default names and the
    // configured ones.
    assertEquals(attrs["url.full"], `${gw.url}/t?api_key=REDACTED&page=2&mine=REDACTED`);
    const log = JSON.parse((await Deno.readTextFile(`${gw.dir}/access.log`)).trim());
    assertEquals(log.trace_id, span.traceId);
  } finally {
    await gw.close();
    await up.close();
    await collector.shutdown();
  }
});

Deno.test("otel: with tracing disabled the span is still exported, but the upstream gets the caller's traceparent as sent", async () => {
  const spans: OtlpSpan[] = [];
  const collector = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const body = await req.json();
      if (new URL(req.url).pathname === "/v1/traces") {
        for (const rs of body.resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
        }
      }
      return Response.json({});
    },
  );
  const up = startUpstream(() => new Response("passed"));
  const gw = await startGatewayProcess((port, adminPort) => `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: 2 }
observe: { access_log: { path: access.log }, tracing: { enabled: false } }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: passed, match: { path: /t }, upstream: a } ]
`, {
    OTEL_DENO: "true",
    OTEL_DENO_CONSOLE: "ignore",
    OTEL_SERVICE_NAME: "gateway-test",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.addr as Deno.NetAddr).port}`,
  });
  try {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff";
    const headers = { traceparent, tracestate: "vendor=abc" };
    assertEquals(await (await fetch(`${gw.url}/t`, { headers })).text(), "passed");
    assertEquals(await (await fetch(`${gw.url}/t`)).text(), "passed");
    gw.child.kill("SIGTERM");
    assertEquals((await gw.child.status).code, 0);

    const [continued, fresh] = up.received.map((r) => r.headers);
    assertEquals(continued!.get("traceparent"), traceparent);
    assertEquals(continued!.get("tracestate"), "vendor=abc");
    assertEquals(fresh!.get("traceparent"), null);
    const exported = () => spans.find((s) => s.traceId === "4bf92f3577b34da6a3ce929d0e0e4736");
    for (let i = 0; i < 500 && !exported(); i++) await new Promise((r) => setTimeout(r, 20));
    assertEquals(exported()?.parentSpanId, "00f067aa0ba902b7");
    const log = (await Deno.readTextFile(`${gw.dir}/access.log`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    assertEquals(log.map((l) => l.trace_id), ["4bf92f3577b34da6a3ce929d0e0e4736", null]);
  } finally {
    await gw.close();
    await up.close();
    await collector.shutdown();
  }
});
