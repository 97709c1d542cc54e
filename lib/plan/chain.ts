/**
 * The per-route policy chain, in its fixed order, so that nothing expensive runs
 * for a request that will be refused:
 *
 *   1. security (IP rules, size limits, request filtering), then CORS (preflight)
 *   2. authentication, then authorisation (scopes)
 *   3. rate limits and quotas
 *   4. response cache
 *   5. request transforms, 6. response transforms
 *   -> terminal: the upstream call (balancing, breaker, bulkhead, timeouts, retries)
 *
 * Access log and metrics wrap everything, in the server. A stage contributes
 * nothing to a route that does not use it.
 */
import type { RouteConfig } from "../config/schema.ts";
import type { NamedPolicy } from "../core/pipeline.ts";
import type { BuildContext } from "./build_context.ts";
import { securityStage } from "../security/stage.ts";
import { globalSecurityStage } from "../security/global_stage.ts";
import { corsStage } from "../transform/cors_stage.ts";
import { authStage } from "../auth/stage.ts";
import { authGlobalStage } from "../auth/global_stage.ts";
import { rateLimitStage } from "../ratelimit/stage.ts";
import { cacheStage } from "../cache/stage.ts";
import { transformStage } from "../transform/stage.ts";

export interface Stage {
  readonly name: string;
  build(route: RouteConfig, index: number, b: BuildContext): Promise<NamedPolicy[]> | NamedPolicy[];
}

export const STAGES: readonly Stage[] = [
  securityStage,
  corsStage,
  authStage,
  rateLimitStage,
  cacheStage,
  transformStage,
];

/** Policies that run for every request before routing (global IP rules, limits, filtering). */
export interface GlobalStage {
  readonly name: string;
  build(b: BuildContext): Promise<NamedPolicy[]> | NamedPolicy[];
}

export const GLOBAL_STAGES: readonly GlobalStage[] = [globalSecurityStage, authGlobalStage];

export async function buildChain(
  route: RouteConfig,
  index: number,
  b: BuildContext,
): Promise<NamedPolicy[]> {
  const out: NamedPolicy[] = [];
  for (const stage of STAGES) out.push(...await stage.build(route, index, b));
  return out;
}
