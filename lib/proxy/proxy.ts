/**
 * The terminal stage of a route: send the request to an upstream target and
 * turn its answer into the client's response. Around the exchange sit the
 * resilience policies: the bulkhead, target choice among available targets
 * (health, ejection, circuit), retries within the budget and the deadline, and
 * degradation (stale, fallback) when no answer can be had. Failures map to 502
 * (refused, reset, malformed), 503 (circuit open, no healthy target, bulkhead
 * full) or 504 (timeout).
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler } from "../core/pipeline.ts";
import { type ErrorCode, GatewayError } from "../core/errors.ts";
import { exchange, type UpstreamResponse } from "./http1/client.ts";
import { UpstreamError } from "./http1/errors.ts";
import { buildHeaderBlock, type ForwardOptions } from "./forward.ts";
import { handshakeRefusal, isWebSocketUpgrade, relayWebSocket } from "./websocket.ts";
import type { Timeouts, Upstream, UpstreamTarget } from "./upstream.ts";
import type { OpenUpgrades } from "./open_upgrades.ts";
import { respondWith } from "./response.ts";
import { retryHasTime, type RetryPolicy } from "../resilience/retry.ts";
import { NO_RESPONSE } from "../resilience/guards.ts";
import { degrade, type Fallback, staleInsteadOf } from "../resilience/fallback.ts";
import { keepBodyForRetry, pause, replayable } from "../resilience/attempts.ts";
import { monoNow } from "../core/clock.ts";

export interface ProxyOptions {
  /** Chooses the upstream for a request (one, or a weighted split). */
  choose: (ctx: RequestContext) => Upstream;
  /** The route's timeouts; unset ones come from the upstream. */
  timeouts: Partial<Timeouts>;
  /** The route's retry policy; null uses the upstream's. */
  retry: RetryPolicy | null;
  /** The route's static answer when the upstream cannot be used. */
  fallback: Fallback | null;
  preserveHost: boolean | undefined;
  via: string;
  requestIdHeader: string;
  /** Where WebSocket sessions are registered while open. */
  upgrades: OpenUpgrades;
}

const RETRY_SOON = { headers: { "retry-after": "1" } };

export function createProxy(o: ProxyOptions): Handler {
  const requestIdHeader = o.requestIdHeader.toLowerCase();
  const via = o.via;
  // Not async: without a bulkhead the exchange's own promise is the answer, no wrapper around it.
  return (ctx) => {
    const upstream = o.choose(ctx);
    ctx.upstreamName = upstream.name;
    const bulkhead = upstream.bulkhead;
    if (bulkhead === null) return forward(ctx, upstream, o, via, requestIdHeader);
    return forwardInBulkhead(ctx, upstream, bulkhead, o, via, requestIdHeader);
  };
}

async function forwardInBulkhead(
  ctx: RequestContext,
  upstream: Upstream,
  bulkhead: NonNullable<Upstream["bulkhead"]>,
  o: ProxyOptions,
  via: string,
  requestIdHeader: string,
): Promise<Response> {
  if (!bulkhead.tryAcquire()) {
    // Slots held by requests to a target that has since gone down: no slot would help.
    if (!upstream.anyAvailable(ctx.now)) return noTarget(ctx, upstream, o.fallback);
    if (!(await bulkhead.wait(ctx.signal))) {
      if (ctx.signal.aborted) return ctx.refuse("client_closed_request");
      return degrade(ctx, o.fallback, "upstream_overloaded", RETRY_SOON);
    }
  }
  // The slot is held until the response head (or the last failure): waiting is what it bounds.
  try {
    return await forward(ctx, upstream, o, via, requestIdHeader);
  } finally {
    bulkhead.release();
  }
}

/** Picks a target and tries it, and others, until an answer, a final failure or the deadline. */
async function forward(
  ctx: RequestContext,
  upstream: Upstream,
  o: ProxyOptions,
  via: string,
  requestIdHeader: string,
): Promise<Response> {
  const upgrade = isWebSocketUpgrade(ctx);
  if (upgrade) {
    const refused = handshakeRefusal(ctx);
    if (refused !== null) return refused;
  }
  const key = upstream.hashKey === null ? null : upstream.hashKey(ctx);
  const first = upstream.balancer.pick(key, ctx.now, null);
  if (first === null) return noTarget(ctx, upstream, o.fallback);
  if (upgrade) return upgradeThroughGuards(ctx, upstream, first, o, via, requestIdHeader);
  const requestMs = o.timeouts.requestMs ?? upstream.timeouts.requestMs;
  // The turn's time (core/clock.ts): unless a body is kept for retries first, the first
  // attempt's start below is the same reading.
  const deadline = requestMs === Infinity ? Infinity : monoNow() + requestMs;
  const policy = o.retry ?? upstream.retry;
  if (policy !== null && policy.attempts > 0) {
    upstream.budget.request(ctx.now);
    try {
      await keepBodyForRetry(ctx, policy);
    } catch (e) {
      return upstreamFailure(ctx, e);
    }
  }
  const clock = upstream.clock;
  let target: UpstreamTarget = first;
  let tried: Set<UpstreamTarget> | null = null;
  let retries = 0;
  let retryTakenAt = 0;
  // The last attempt's outcome: kept through a retry's backoff, for when the retry cannot go.
  let res: UpstreamResponse | null = null;
  let error: UpstreamError | null = null;
  while (true) {
    const guards = target.guards;
    if (guards !== null && !guards.available(clock.now())) {
      // It changed while this request waited (its probe slot was taken, its circuit opened).
      const other = upstream.balancer.pick(key, clock.now(), (tried ??= new Set()).add(target));
      if (other !== null) {
        target = other;
        continue;
      }
      if (retries === 0) return noTarget(ctx, upstream, o.fallback);
      // The retry's targets went away during its backoff: the attempt made is the answer.
      upstream.budget.giveBack(retryTakenAt, clock.now());
      return lastOutcome(ctx, res, error, o.fallback);
    }
    if (res !== null) {
      discard(res);
      res = null;
    }
    error = null;
    const probe = guards === null ? 0 : guards.admit(clock.now());
    const started = monoNow();
    try {
      res = checkStatus(
        await send(
          ctx,
          upstream,
          target,
          o,
          via,
          requestIdHeader,
          deadline === Infinity ? Infinity : deadline - started,
          started,
        ),
      );
      ctx.upstreamMs = monoNow() - started;
    } catch (e) {
      // A deadline the client's slow upload used up tells nothing of the target either.
      if (!(e instanceof UpstreamError) || e.kind === "aborted" || e.waitedOnClient) {
        guards?.abandon(probe);
        return upstreamFailure(ctx, e);
      }
      error = e;
      // The log's upstream latency is the answered attempt's, and this one had no response head.
      ctx.upstreamMs = -1;
    }
    const status = res === null ? NO_RESPONSE : res.status;
    guards?.settle(clock.now(), status, probe);
    if (res !== null && status < 500) return respondWith(ctx, res);

    if (
      policy !== null && retries < policy.attempts &&
      (error === null
        ? policy.retriesStatus(status, ctx.method) && replayable(ctx)
        : policy.retriesError(error.kind, ctx.method) && (!error.sent || replayable(ctx)))
    ) {
      const delay = policy.delayMs(retries + 1);
      // Not started without a fair share of the deadline left after the backoff (retryHasTime).
      const late = deadline !== Infinity && !retryFits(deadline, delay, started, requestMs);
      if (late) upstream.budget.late();
      const now = clock.now();
      const next = late ? null : retryTarget(upstream, key, target, tried ??= new Set(), now);
      if (next !== null) {
        retries++;
        retryTakenAt = now;
        if (delay > 0 && !(await pause(delay, ctx.signal))) {
          if (res !== null) discard(res);
          return ctx.refuse("client_closed_request");
        }
        target = next;
        continue;
      }
    }
    return lastOutcome(ctx, res, error, o.fallback);
  }
}

/**
 * The answer when no further attempt is made: the last attempt's response (or
 * a stale copy instead of its 5xx), else its error, or what stands in for it.
 */
function lastOutcome(
  ctx: RequestContext,
  res: UpstreamResponse | null,
  error: UpstreamError | null,
  fallback: Fallback | null,
): Response {
  if (res === null) return degrade(ctx, fallback, failureCode(error!));
  const stale = staleInsteadOf(ctx, res.status);
  if (stale === null) return respondWith(ctx, res);
  discard(res);
  return stale;
}

/**
 * A WebSocket handshake, counted by the target's breaker and outlier record like
 * any exchange: it takes a half-open probe slot, and a failure to reach the
 * upstream or a 5xx instead of its 101 is a failure. The session after is not.
 */
async function upgradeThroughGuards(
  ctx: RequestContext,
  upstream: Upstream,
  target: UpstreamTarget,
  o: ProxyOptions,
  via: string,
  requestIdHeader: string,
): Promise<Response> {
  const guards = target.guards;
  const clock = upstream.clock;
  const probe = guards === null ? 0 : guards.admit(clock.now());
  const res = await relayWebSocket(
    ctx,
    target,
    forwardOptions(ctx, upstream, target, o, via, requestIdHeader),
    { ...upstream.timeouts, ...o.timeouts },
    o.upgrades,
  );
  guards?.settle(clock.now(), upgradeOutcome(ctx, res), probe);
  return res;
}

/** The status the guards record for a handshake: the gateway's own refusals had no answer. */
function upgradeOutcome(ctx: RequestContext, res: Response): number {
  const code = ctx.errorCode;
  return code === "bad_gateway" || code === "upstream_timeout" || code === "upstream_error"
    ? NO_RESPONSE
    : res.status;
}

/** `retryHasTime` for a retry after `delayMs`, read against the clock now. */
function retryFits(deadline: number, delayMs: number, started: number, requestMs: number): boolean {
  const now = performance.now();
  return retryHasTime(deadline - now - delayMs, now - started, requestMs);
}

/** Another target for a retry (a different one when the pool has one), if the budget allows. */
function retryTarget(
  upstream: Upstream,
  key: string | null,
  failed: UpstreamTarget,
  tried: Set<UpstreamTarget>,
  now: number,
): UpstreamTarget | null {
  tried.add(failed);
  const next = upstream.balancer.pick(key, now, tried);
  return next !== null && upstream.budget.tryRetry(now) ? next : null;
}

function noTarget(ctx: RequestContext, upstream: Upstream, fallback: Fallback | null): Response {
  const { code, waitMs } = upstream.unavailable(ctx.now);
  const seconds = Number.isFinite(waitMs) ? Math.max(1, Math.ceil(waitMs / 1000)) : 1;
  return degrade(ctx, fallback, code, { headers: { "retry-after": String(seconds) } });
}

function send(
  ctx: RequestContext,
  upstream: Upstream,
  target: UpstreamTarget,
  o: ProxyOptions,
  via: string,
  requestIdHeader: string,
  remainingMs: number,
  startedAt: number,
): Promise<UpstreamResponse> {
  ctx.upstreamTarget = target.id;
  ctx.attempts++;
  const t = upstream.timeouts;
  const headerBlock = buildHeaderBlock(
    ctx,
    forwardOptions(ctx, upstream, target, o, via, requestIdHeader),
  );
  return exchange(target.pool, {
    method: ctx.method,
    path: ctx.upstreamPath,
    headerBlock,
    body: ctx.body,
    bodyLength: ctx.bodyLength,
  }, {
    // The request deadline bounds the connect too: it is not watched before the request is out.
    connectTimeoutMs: Math.min(o.timeouts.connectMs ?? t.connectMs, remainingMs),
    firstByteTimeoutMs: o.timeouts.firstByteMs ?? t.firstByteMs,
    requestTimeoutMs: remainingMs,
    startedAt,
    signal: () => ctx.signal,
  });
}

function forwardOptions(
  ctx: RequestContext,
  upstream: Upstream,
  target: UpstreamTarget,
  o: ProxyOptions,
  via: string,
  requestIdHeader: string,
): ForwardOptions {
  return {
    authority: target.pool.target.authority,
    preserveHost: o.preserveHost ?? upstream.config.preserve_host,
    via,
    requestIdHeader,
    trustedPeer: ctx.peerTrusted,
    extraBlock: upstream.extraBlock,
    extraNames: upstream.extraNames,
  };
}

/** Refuses a final status outside 200-599 as a protocol error. */
function checkStatus(res: UpstreamResponse): UpstreamResponse {
  if (res.status >= 200 && res.status <= 599) return res;
  discard(res);
  throw new UpstreamError("protocol", `Upstream answered with status ${res.status}`);
}

/** Drops a response that will not be forwarded (its connection cannot be reused mid-body). */
function discard(res: UpstreamResponse): void {
  if (res.body instanceof ReadableStream) res.body.cancel().catch(() => {});
}

/** Maps a failure that is not the upstream's (the request body, the client) to the answer. */
export function upstreamFailure(ctx: RequestContext, e: unknown): Response {
  if (e instanceof GatewayError) return ctx.refuse(e.code, e.details);
  if (e instanceof UpstreamError) {
    return ctx.refuse(e.kind === "aborted" ? "client_closed_request" : failureCode(e));
  }
  throw e;
}

/** The gateway's error for an exchange that got no usable answer. */
function failureCode(e: UpstreamError): ErrorCode {
  switch (e.kind) {
    case "timeout":
    case "connect_timeout":
      return "upstream_timeout";
    case "protocol":
      return "upstream_error";
    default:
      return "bad_gateway";
  }
}
