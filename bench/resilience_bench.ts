/**
 * Per-request cost of the resilience guards on the proxy path, without I/O:
 * choosing a target and recording its outcome, with no guards and with all of them.
 *
 *   deno bench -A bench/resilience_bench.ts
 */
import { roundRobin } from "../lib/resilience/balance.ts";
import { TargetGuards } from "../lib/resilience/guards.ts";
import { CircuitBreaker } from "../lib/resilience/breaker.ts";
import { OutlierDetector } from "../lib/resilience/outlier.ts";
import { RetryBudget } from "../lib/resilience/retry.ts";

interface T {
  weight: number;
  inFlight: number;
  guards: TargetGuards | null;
  available(now: number): boolean;
}

function targets(guarded: boolean): T[] {
  return [0, 1].map(() => {
    const guards = guarded
      ? new TargetGuards(
        new CircuitBreaker({
          failureRatio: 0.5,
          minRequests: 20,
          windowMs: 10_000,
          consecutiveFailures: Infinity,
          openMs: 30_000,
          halfOpenRequests: 1,
        }),
        new Set([500, 502, 503, 504]),
        new OutlierDetector({ consecutiveFailures: 5, baseMs: 10_000, maxMs: 300_000 }),
        null,
        0,
      )
      : null;
    return {
      weight: 1,
      inFlight: 0,
      guards,
      available: (now: number) => guards === null || guards.available(now),
    };
  });
}

for (const guarded of [false, true]) {
  const balancer = roundRobin(targets(guarded));
  const budget = new RetryBudget({ ratio: 0.2, minRetries: 10, windowMs: 10_000 });
  let now = 0;
  Deno.bench(guarded ? "pick + admit + settle, all guards + budget" : "pick, no guards", () => {
    now += 0.01;
    const t = balancer.pick(null, now, null)!;
    const g = t.guards;
    if (g !== null) {
      budget.request(now);
      const probe = g.admit(now);
      g.settle(now, 200, probe);
    }
  });
}
