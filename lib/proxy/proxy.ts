/**
 * The terminal stage of a route: send the request to an upstream target and
 * turn its answer into the client's response. Failures map to 502 (refused,
 * reset, malformed) or 504 (timeout).
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler } from "../core/pipeline.ts";
import { GatewayError } from "../core/errors.ts";
import { exchange, type UpstreamResponse } from "./http1/client.ts";
import { UpstreamError } from "./http1/errors.ts";
import { buildHeaderBlock, type ForwardOptions } from "./forward.ts";
import { isWebSocketUpgrade, relayWebSocket } from "./websocket.ts";
import type { Timeouts, Upstream, UpstreamTarget } from "./upstream.ts";
import { withBodySize } from "../observe/body_size.ts";

export interface ProxyOptions {
  /** Chooses the upstream for a request (one, or a weighted split). */
  choose: (ctx: RequestContext) => Upstream;
  timeouts: Partial<Timeouts>;
  preserveHost: boolean | undefined;
  via: string;
  requestIdHeader: string;
  tracing: boolean;
}

/** Status codes whose responses never carry a body. */
const NULL_BODY = new Set([204, 205, 304]);

export function createProxy(o: ProxyOptions): Handler {
  const requestIdHeader = o.requestIdHeader.toLowerCase();
  const via = `1.1 ${o.via}`;
  return async (ctx) => {
    const upstream = o.choose(ctx);
    ctx.upstreamName = upstream.name;
    const nowMono = performance.now();
    const target = upstream.balancer.pick(
      upstream.hashKey ? upstream.hashKey(ctx) : null,
      nowMono,
    );
    if (target === null) return ctx.refuse("no_healthy_upstream");
    if (isWebSocketUpgrade(ctx.request)) {
      return relayWebSocket(
        ctx,
        target,
        forwardOptions(ctx, upstream, target, o, via, requestIdHeader),
        o.timeouts.connectMs ?? upstream.timeouts.connectMs,
      );
    }
    try {
      const res = await send(ctx, upstream, target, o, via, requestIdHeader);
      return toResponse(res);
    } catch (e) {
      return upstreamFailure(ctx, e);
    }
  };
}

export function send(
  ctx: RequestContext,
  upstream: Upstream,
  target: UpstreamTarget,
  o: ProxyOptions,
  via: string,
  requestIdHeader: string,
): Promise<UpstreamResponse> {
  ctx.upstreamTarget = target.id;
  ctx.attempts++;
  const t = upstream.timeouts;
  const started = performance.now();
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
    connectTimeoutMs: o.timeouts.connectMs ?? t.connectMs,
    firstByteTimeoutMs: o.timeouts.firstByteMs ?? t.firstByteMs,
    requestTimeoutMs: o.timeouts.requestMs ?? t.requestMs,
    signal: ctx.request.signal,
  }).then((res) => {
    ctx.upstreamMs = performance.now() - started;
    return res;
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
    tracing: o.tracing,
    extraBlock: upstream.extraBlock,
  };
}

export function toResponse(res: UpstreamResponse): Response {
  if (res.status < 200 || res.status > 599) {
    throw new UpstreamError("protocol", `Upstream answered with status ${res.status}`);
  }
  const headers = res.headers;
  let body = res.body;
  if (body instanceof Uint8Array) {
    // The runtime frames a byte body itself; a stale length would corrupt it.
    for (let i = headers.length - 1; i >= 0; i--) {
      if (headers[i]![0] === "content-length") headers.splice(i, 1);
    }
  }
  if (NULL_BODY.has(res.status)) {
    if (body instanceof ReadableStream) body.cancel().catch(() => {});
    body = null;
  }
  const out = new Response(body, { status: res.status, statusText: res.statusText, headers });
  return body instanceof Uint8Array ? withBodySize(out, body.byteLength) : out;
}

/** Maps a failed exchange to the client's answer. */
export function upstreamFailure(ctx: RequestContext, e: unknown): Response {
  if (e instanceof GatewayError) return ctx.refuse(e.code, e.details);
  if (e instanceof UpstreamError) {
    switch (e.kind) {
      case "timeout":
      case "connect_timeout":
        return ctx.refuse("upstream_timeout");
      case "aborted":
        return ctx.refuse("client_closed_request");
      case "protocol":
        return ctx.refuse("upstream_error");
      default:
        return ctx.refuse("bad_gateway");
    }
  }
  throw e;
}
