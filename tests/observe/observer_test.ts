/**
 * The request observer on its own, with the outcome fields that auth, rate
 * limits and the cache record on the context: what lands in the registry and
 * the access log, consumer labels on and off, and sampling.
 */
import { assertEquals } from "../helpers/assert.ts";
import type { Consumer, RequestContext } from "../../lib/core/context.ts";
import { makeContext } from "../transform/request_context.ts";
import { MetricsRegistry } from "../../lib/observe/metrics/registry.ts";
import { RequestMetrics } from "../../lib/observe/request_metrics.ts";
import { RequestObserver } from "../../lib/observe/observer.ts";
import { AccessLog } from "../../lib/observe/access_log.ts";
import { LogSink } from "../../lib/observe/log_sink.ts";
import { compileQueryRedactor } from "../../lib/observe/redact_query.ts";
import { silentLogger } from "../../lib/observe/logger.ts";
import { parsePromText, samplesOf, sampleValue } from "./prom_text.ts";

function context(path = "/r"): RequestContext {
  return makeContext(`http://gw.test${path}`);
}

const teamA: Consumer = { id: "team-a", plan: null, scopes: new Set(), configured: true };

function setup(consumerLabel: boolean, sample = 1, random?: () => number) {
  const registry = new MetricsRegistry();
  const lines: string[] = [];
  const sink = new LogSink("stdout", 10, silentLogger, {
    write: (p) => {
      lines.push(...new TextDecoder().decode(p).split("\n").filter(Boolean));
      return Promise.resolve(p.length);
    },
  });
  const accessLog = new AccessLog({
    sink,
    sample,
    redactQuery: compileQueryRedactor([]),
    ...(random ? { random } : {}),
  });
  const observer = new RequestObserver(new RequestMetrics(registry), accessLog, consumerLabel, []);
  return { registry, observer, sink, lines };
}

/** Runs one request through the observer; returns the body bytes the client read. */
async function serve(o: RequestObserver, ctx: RequestContext, res: Response): Promise<number> {
  o.begin(ctx);
  return (await o.end(ctx, res).arrayBuffer()).byteLength;
}

Deno.test("observer: rate-limit, auth, cache and error outcomes are counted exactly", async () => {
  const { registry, observer, sink, lines } = setup(true);
  await sink.open();
  let sent = 0;

  const hit = context();
  hit.route = { name: "r" };
  hit.consumer = teamA;
  hit.rateLimit = "allowed";
  hit.cacheStatus = "HIT";
  sent += await serve(observer, hit, new Response("cached"));

  const limited = context();
  limited.route = { name: "r" };
  limited.consumer = teamA;
  sent += await serve(
    observer,
    limited,
    (() => {
      limited.rateLimit = "limited";
      return limited.refuse("rate_limited");
    })(),
  );

  const shadow = context();
  shadow.route = { name: "r" };
  shadow.rateLimit = "shadow_limited";
  shadow.cacheStatus = "MISS";
  sent += await serve(observer, shadow, new Response("fresh"));

  const expired = context();
  expired.route = { name: "r" };
  expired.authFailure = { provider: "bearer", reason: "token_expired" };
  sent += await serve(observer, expired, expired.refuse("token_expired"));

  const f = parsePromText(registry.render());
  const decision = (d: string) =>
    sampleValue(f, "gateway_ratelimit_decisions_total", { route: "r", decision: d });
  assertEquals([decision("allowed"), decision("limited"), decision("shadow_limited")], [1, 1, 1]);
  assertEquals(
    sampleValue(f, "gateway_auth_failures_total", { provider: "bearer", reason: "token_expired" }),
    1,
  );
  assertEquals(sampleValue(f, "gateway_cache_lookups_total", { route: "r", result: "hit" }), 1);
  assertEquals(sampleValue(f, "gateway_cache_lookups_total", { route: "r", result: "miss" }), 1);
  assertEquals(sampleValue(f, "gateway_errors_total", { route: "r", code: "rate_limited" }), 1);
  assertEquals(sampleValue(f, "gateway_errors_total", { route: "r", code: "token_expired" }), 1);
  assertEquals(
    sampleValue(f, "gateway_requests_total", {
      route: "r",
      status_class: "2xx",
      consumer: "team-a",
    }),
    1,
  );
  assertEquals(
    sampleValue(f, "gateway_requests_total", {
      route: "r",
      status_class: "4xx",
      consumer: "team-a",
    }),
    1,
  );
  assertEquals(sampleValue(f, "gateway_response_bytes_total", { route: "r" }), sent);
  assertEquals(sampleValue(f, "gateway_requests_in_flight"), 0);

  await sink.flush();
  const records = lines.map((l) => JSON.parse(l));
  assertEquals(
    records.map((r) => [r.status, r.consumer, r.rate_limit, r.cache, r.error_code]),
    [
      [200, "team-a", "allowed", "HIT", null],
      [429, "team-a", "limited", null, "rate_limited"],
      [200, null, "shadow_limited", "MISS", null],
      [401, null, null, null, "token_expired"],
    ],
  );
  await sink.close();
});

Deno.test("observer: consumer_label false keeps consumers out of the labels", async () => {
  const { registry, observer, sink } = setup(false);
  await sink.open();
  const ctx = context();
  ctx.route = { name: "r" };
  ctx.consumer = teamA;
  observer.begin(ctx);
  observer.end(ctx, new Response(null, { status: 204 }));
  await sink.close();
  const f = parsePromText(registry.render());
  assertEquals(samplesOf(f, "gateway_requests_total").map((s) => s.labels), [
    { route: "r", method: "GET", status_class: "2xx" },
  ]);
});

Deno.test("observer: sample applies to successes only; refusals and errors are always logged", async () => {
  const draws = [0.1, 0.9, 0.4, 0.6, 0.0, 0.0];
  const { observer, sink, lines } = setup(true, 0.5, () => draws.shift()!);
  await sink.open();
  for (let i = 0; i < 4; i++) {
    const ctx = context(`/ok${i}`);
    observer.begin(ctx);
    observer.end(ctx, new Response(null, { status: 204 }));
  }
  for (const status of [404, 500, 503]) {
    const ctx = context(`/fail${status}`);
    observer.begin(ctx);
    observer.end(ctx, new Response(null, { status }));
  }
  await sink.flush();
  assertEquals(lines.map((l) => JSON.parse(l).path), [
    "/ok0",
    "/ok2",
    "/fail404",
    "/fail500",
    "/fail503",
  ]);
  // Refusals did not consume random draws.
  assertEquals(draws.length, 2);
  await sink.close();
});

Deno.test("observer: a chunked request body is counted as the upstream reads it", async () => {
  const { registry, observer, sink } = setup(true);
  await sink.open();
  const ctx = makeContext("http://gw.test/up", { method: "POST" });
  ctx.body = new ReadableStream({
    start(c) {
      c.enqueue(new Uint8Array(5));
      c.enqueue(new Uint8Array(7));
      c.close();
    },
  });
  ctx.bodyLength = null;
  ctx.route = { name: "r" };
  observer.begin(ctx);
  const read = await new Response(ctx.body as ReadableStream).arrayBuffer();
  assertEquals(read.byteLength, 12);
  observer.end(ctx, new Response(null, { status: 204 }));
  await sink.close();
  assertEquals(ctx.bytesIn, 12);
  assertEquals(
    sampleValue(parsePromText(registry.render()), "gateway_request_bytes_total", { route: "r" }),
    12,
  );
});
