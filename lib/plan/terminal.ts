/** The end of a route's chain: the upstream choice and the proxy call, or the job queue. */
import type { RouteConfig } from "../config/schema.ts";
import type { Handler } from "../core/pipeline.ts";
import type { RequestContext } from "../core/context.ts";
import { compileRequestKey } from "../core/request_key.ts";
import { weightedChoice } from "../router/split.ts";
import { createProxy } from "../proxy/proxy.ts";
import { createJobSubmit } from "../jobs/submit.ts";
import type { Upstream } from "../proxy/upstream.ts";
import type { BuildContext } from "./build_context.ts";
import { RetryPolicy } from "../resilience/retry.ts";
import { compileFallback } from "../resilience/fallback.ts";
import { createAggregate } from "../aggregate/aggregate.ts";

export function chooseUpstream(
  route: RouteConfig,
  b: BuildContext,
): (ctx: RequestContext) => Upstream {
  if (route.upstream) {
    const u = b.upstreams.get(route.upstream)!;
    return () => u;
  }
  const choice = weightedChoice(route.split!.map((s) => ({
    item: b.upstreams.get(s.upstream)!,
    weight: s.weight,
  })));
  const sticky = route.sticky ? compileRequestKey(route.sticky) : null;
  return sticky ? (ctx) => choice.pick(sticky(ctx)) : () => choice.pick(null);
}

export function buildTerminal(
  route: RouteConfig,
  index: number,
  b: BuildContext,
): Handler | Promise<Handler> {
  if (route.aggregate) return createAggregate(route, index, b);
  const s = b.config.server;
  if (route.async) {
    return createJobSubmit(route, b, {
      choose: chooseUpstream(route, b),
      capture: {
        via: s.via,
        requestIdHeader: s.request_id_header.toLowerCase(),
      },
    });
  }
  return createProxy({
    choose: chooseUpstream(route, b),
    timeouts: {
      ...(route.timeout?.connect_ms !== undefined ? { connectMs: route.timeout.connect_ms } : {}),
      ...(route.timeout?.first_byte_ms !== undefined
        ? { firstByteMs: route.timeout.first_byte_ms }
        : {}),
      ...(route.timeout?.request_ms !== undefined ? { requestMs: route.timeout.request_ms } : {}),
    },
    retry: route.retries ? new RetryPolicy(route.retries) : null,
    fallback: route.fallback ? compileFallback(route.fallback) : null,
    preserveHost: route.preserve_host,
    via: s.via,
    requestIdHeader: s.request_id_header,
    upgrades: b.deps.upgrades,
  });
}
