/**
 * What observing one request costs: `deno bench -A bench/observe_bench.ts`.
 * Each case builds a request context and a byte response the way a proxied
 * request does; the differences between cases are the observer's share.
 */
import { RequestContext } from "../lib/core/context.ts";
import { incomingOf } from "../lib/server/incoming.ts";
import { HeaderEdits } from "../lib/proxy/header_edits.ts";
import { parseTraceparent } from "../lib/observe/trace.ts";
import { MetricsRegistry } from "../lib/observe/metrics/registry.ts";
import { RequestMetrics } from "../lib/observe/request_metrics.ts";
import { RequestObserver } from "../lib/observe/observer.ts";
import { AccessLog } from "../lib/observe/access_log.ts";
import { LogSink } from "../lib/observe/log_sink.ts";
import { compileQueryRedactor, DEFAULT_REDACTED_QUERY } from "../lib/observe/redact_query.ts";
import { silentLogger } from "../lib/observe/logger.ts";
import { withBodySize } from "../lib/observe/body_size.ts";

const body = new TextEncoder().encode('{"service":"users","id":42,"name":"Ada"}');
const request = new Request("http://gw.test/api/users/42?page=2", {
  headers: { "user-agent": "bench" },
});
const route = { name: "users" };

function proxied(): { ctx: RequestContext; res: Response } {
  const ctx = new RequestContext(
    incomingOf(request),
    "GET",
    "/api/users/42",
    "?page=2",
    "gw.test",
    "127.0.0.1",
    "127.0.0.1",
    { name: "public", tls: false },
    Date.now(),
    performance.now(),
    crypto.randomUUID(),
    parseTraceparent(null, null),
    new HeaderEdits(),
  );
  ctx.route = route;
  ctx.upstreamName = "users";
  ctx.upstreamTarget = "http://10.0.0.1:3000";
  ctx.upstreamMs = 0.4;
  const res = withBodySize(new Response(body, { status: 200 }), body.length);
  return { ctx, res };
}

const discard = { write: (p: Uint8Array) => Promise.resolve(p.length) };
const sink = new LogSink("stdout", 1000, silentLogger, discard);
await sink.open();
const quiet = new RequestObserver(new RequestMetrics(new MetricsRegistry()), null, true, []);
const logging = new RequestObserver(
  new RequestMetrics(new MetricsRegistry()),
  new AccessLog({ sink, sample: 1, redactQuery: compileQueryRedactor(DEFAULT_REDACTED_QUERY) }),
  true,
  [],
);

// Every case returns a promise, so all pay the same for it.
Deno.bench("request context and response only", { baseline: true }, () => {
  proxied();
  return Promise.resolve();
});

Deno.bench("observed: metrics", () => {
  const { ctx, res } = proxied();
  quiet.begin(ctx);
  quiet.end(ctx, res);
  return Promise.resolve();
});

let logged = 0;
Deno.bench("observed: metrics + access log line", async () => {
  const { ctx, res } = proxied();
  logging.begin(ctx);
  logging.end(ctx, res);
  // The batched write (join, encode, write) is part of the cost: paid every 256 lines here.
  if (++logged % 256 === 0) await sink.flush();
});

globalThis.addEventListener("unload", () => {
  if (sink.dropped > 0) console.error(`${sink.dropped} lines dropped: the log case is understated`);
});
