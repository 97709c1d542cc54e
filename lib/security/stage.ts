/** A route's IP rules, head limits tighter than the global ones, and request filtering. */
import type { NamedPolicy } from "../core/pipeline.ts";
import type { Stage } from "../plan/chain.ts";
import { createIpPolicy } from "./ip_rules.ts";
import { createHeadLimitsPolicy } from "./head_limits.ts";
import { routeHeadLimits } from "./head_ceiling.ts";
import { createRequestFilter } from "./waf/filter.ts";

export const securityStage: Stage = {
  name: "security",
  build: async (route, _index, b) => {
    const out: NamedPolicy[] = [];
    const ip = createIpPolicy(route.ip);
    if (ip) out.push(ip);
    const limits = routeHeadLimits(route, b.config);
    if (limits) out.push(createHeadLimitsPolicy(limits));
    if (route.waf) {
      const filter = await createRequestFilter(route.waf, {
        scope: route.name,
        logger: b.deps.logger,
      });
      if (filter) out.push(filter);
    }
    return out;
  },
};
