/**
 * Per-request metrics: what every request adds to the registry when it ends.
 * Label values are bounded: routes come from the config (`unmatched` when none
 * matched), methods outside the standard set are `OTHER`, statuses are classes.
 */
import type { RequestContext } from "../core/context.ts";
import type {
  Counter,
  CounterFamily,
  Gauge,
  Histogram,
  HistogramFamily,
  MetricsRegistry,
} from "./metrics/registry.ts";

/** Seconds, from half a millisecond (a cache hit) to 10 s (a slow upstream). */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

export const UNMATCHED_ROUTE = "unmatched";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);
const STATUS_CLASSES = ["1xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

/** Children of every family one kind of request touches, resolved once per label combination. */
interface Series {
  requests: Counter;
  duration: Histogram;
  bytesIn: Counter;
  bytesOut: Counter;
  upstream: Histogram | null;
}

export class RequestMetrics {
  readonly inFlight: Gauge;
  private readonly series = new Map<string, Series>();
  private last: {
    route: string;
    method: string;
    statusClass: string;
    consumer: string;
    upstream: string | null;
    series: Series;
  } | null = null;
  private readonly requests: CounterFamily;
  private readonly duration: HistogramFamily;
  private readonly upstreamDuration: HistogramFamily;
  private readonly bytesIn: CounterFamily;
  private readonly bytesOut: CounterFamily;
  private readonly errors: CounterFamily;
  private readonly rateLimit: CounterFamily;
  private readonly authFailures: CounterFamily;
  private readonly cache: CounterFamily;

  constructor(registry: MetricsRegistry) {
    this.requests = registry.counter(
      "gateway_requests_total",
      "Requests answered, by route, method, status class and consumer",
      ["route", "method", "status_class", "consumer"],
    );
    this.duration = registry.histogram(
      "gateway_request_duration_seconds",
      "Time from request arrival to the last byte of the response",
      ["route", "method", "status_class"],
      DURATION_BUCKETS,
    );
    this.upstreamDuration = registry.histogram(
      "gateway_upstream_duration_seconds",
      "Time from sending a request upstream to receiving its response head",
      ["route", "upstream"],
      DURATION_BUCKETS,
    );
    this.bytesIn = registry.counter(
      "gateway_request_bytes_total",
      "Request body bytes received from clients",
      ["route"],
    );
    this.bytesOut = registry.counter(
      "gateway_response_bytes_total",
      "Response body bytes sent to clients",
      ["route"],
    );
    this.inFlight = registry.gauge(
      "gateway_requests_in_flight",
      "Requests being served right now",
    ).labels();
    this.errors = registry.counter(
      "gateway_errors_total",
      "Requests the gateway refused or failed, by error code",
      ["route", "code"],
    );
    this.rateLimit = registry.counter(
      "gateway_ratelimit_decisions_total",
      "Rate-limit decisions: allowed, limited (refused) or shadow_limited (would have been refused)",
      ["route", "decision"],
    );
    this.authFailures = registry.counter(
      "gateway_auth_failures_total",
      "Requests whose credentials were missing or rejected, by provider and reason",
      ["provider", "reason"],
    );
    this.cache = registry.counter(
      "gateway_cache_lookups_total",
      "Response cache lookups, by result (hit, miss, stale, bypass)",
      ["route", "result"],
    );
  }

  /** Records a finished request. `consumer` is "" when consumer labels are off or there is none. */
  record(
    ctx: RequestContext,
    status: number,
    consumer: string,
    seconds: number,
    bytesOut: number,
  ): void {
    const route = ctx.route?.name ?? UNMATCHED_ROUTE;
    const method = METHODS.has(ctx.method) ? ctx.method : "OTHER";
    const statusClass = STATUS_CLASSES[(status / 100) | 0] ?? "5xx";
    const upstream = ctx.upstreamMs >= 0 ? ctx.upstreamName : null;
    const s = this.sameAsLast(route, method, statusClass, consumer, upstream) ??
      this.seriesOf(route, method, statusClass, consumer, upstream);
    s.requests.value++;
    s.duration.observe(seconds);
    s.bytesIn.value += ctx.bytesIn;
    s.bytesOut.value += bytesOut;
    if (s.upstream !== null) s.upstream.observe(ctx.upstreamMs / 1000);
    if (ctx.errorCode !== null) this.errors.pair(route, ctx.errorCode).value++;
    if (ctx.rateLimit !== null) this.rateLimit.pair(route, ctx.rateLimit).value++;
    if (ctx.authFailure !== null) {
      this.authFailures.pair(ctx.authFailure.provider, ctx.authFailure.reason).value++;
    }
    if (ctx.cacheStatus !== null) this.cache.pair(route, ctx.cacheStatus.toLowerCase()).value++;
  }

  /** The last request's series if this one has the same labels (traffic comes in runs of a kind). */
  private sameAsLast(
    route: string,
    method: string,
    statusClass: string,
    consumer: string,
    upstream: string | null,
  ): Series | null {
    const l = this.last;
    return l !== null && l.route === route && l.method === method &&
        l.statusClass === statusClass && l.consumer === consumer && l.upstream === upstream
      ? l.series
      : null;
  }

  private seriesOf(
    route: string,
    method: string,
    statusClass: string,
    consumer: string,
    upstream: string | null,
  ): Series {
    const key = `${route}\u0000${method}\u0000${statusClass}\u0000${consumer}\u0000${
      upstream ?? ""
    }`;
    let series = this.series.get(key);
    if (series === undefined) {
      series = {
        requests: this.requests.labels(route, method, statusClass, consumer),
        duration: this.duration.labels(route, method, statusClass),
        bytesIn: this.bytesIn.labels(route),
        bytesOut: this.bytesOut.labels(route),
        upstream: upstream === null ? null : this.upstreamDuration.labels(route, upstream),
      };
      this.series.set(key, series);
    }
    this.last = { route, method, statusClass, consumer, upstream, series };
    return series;
  }
}
