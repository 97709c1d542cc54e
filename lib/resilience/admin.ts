/** Admin endpoints of resilience: `GET /upstreams` and `GET /upstreams/{name}`. */
import type { Gateway } from "../server/gateway.ts";
import { json } from "../server/admin.ts";
import { errorResponse } from "../core/errors.ts";
import type { Upstream, UpstreamTarget } from "../proxy/upstream.ts";

export function registerResilienceAdmin(gw: Gateway): void {
  gw.admin.add("GET", "/upstreams", () => {
    const now = gw.deps.clock.now();
    return json({ upstreams: [...gw.plan.upstreams.values()].map((u) => describe(u, now)) });
  });
  gw.admin.add("GET", "/upstreams/{name}", (_req, params) => {
    const u = gw.plan.upstreams.get(params.name!);
    if (!u) {
      return errorResponse("route_not_found", crypto.randomUUID(), {
        message: `No upstream named ${params.name}`,
      });
    }
    return json(describe(u, gw.deps.clock.now()));
  });
}

function describe(u: Upstream, now: number) {
  const b = u.bulkhead;
  return {
    name: u.name,
    balance: u.config.balance,
    available_targets: u.targets.filter((t) => t.weight > 0 && t.available(now)).length,
    targets: u.targets.map((t) => describeTarget(t, now)),
    bulkhead: b &&
      { max_concurrent: b.limit, active: b.active, queued: b.queued, rejected: b.rejected },
    retry_budget: u.budget.snapshot(now),
    outlier: u.ejectionCap && {
      max_ejection_percent: u.ejectionCap.percent,
      max_ejected: u.ejectionCap.maxEjected,
      ejected: u.ejectionCap.ejected(now),
      ejections_refused: u.ejectionCap.refusedTotal,
    },
  };
}

function describeTarget(t: UpstreamTarget, now: number) {
  const g = t.guards;
  const breaker = g?.breaker ?? null;
  const outlier = g?.outlier ?? null;
  const checker = g?.checker ?? null;
  const at = (ms: number) => new Date(ms).toISOString();
  return {
    url: t.id,
    weight: t.weight,
    available: t.available(now),
    healthy: t.healthy,
    circuit: t.circuit,
    in_flight: t.inFlight,
    idle_connections: t.pool.idleCount,
    breaker: breaker && {
      state: breaker.state(now),
      open_until: breaker.state(now) === "open" ? at(breaker.openUntil) : null,
      consecutive_failures: breaker.consecutive,
      window: breaker.windowCounts(now),
      trips: breaker.trips,
    },
    health_check: checker && {
      healthy: checker.healthy,
      last: checker.last && { ...checker.last, at: at(checker.last.at) },
    },
    outlier: outlier && {
      ejected: outlier.ejected(now),
      ejected_until: outlier.ejected(now) ? at(outlier.ejectedUntil) : null,
      ejections: outlier.ejections,
      ejections_refused: outlier.refused,
      consecutive_failures: outlier.consecutive,
    },
  };
}
