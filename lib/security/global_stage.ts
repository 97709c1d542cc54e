/**
 * What every request on a public listener goes through before routing: global
 * IP rules, head limits, Host agreement, the body deadline and global request
 * filtering.
 */
import type { NamedPolicy } from "../core/pipeline.ts";
import type { GlobalStage } from "../plan/chain.ts";
import { createIpPolicy } from "./ip_rules.ts";
import { createHeadLimitsPolicy } from "./head_limits.ts";
import { globalHeadLimits } from "./head_ceiling.ts";
import { createBodyDeadlinePolicy } from "./body_deadline.ts";
import { createRequestFilter } from "./waf/filter.ts";
import { hostAgreementPolicy } from "./host_agreement.ts";

export const globalSecurityStage: GlobalStage = {
  name: "security",
  build: async (b) => {
    const s = b.config.security;
    const out: NamedPolicy[] = [];
    const ip = createIpPolicy(s.ip);
    if (ip) out.push(ip);
    out.push(createHeadLimitsPolicy(globalHeadLimits(b.config)));
    out.push(hostAgreementPolicy);
    out.push(createBodyDeadlinePolicy(s.body_timeout_ms));
    if (s.waf) {
      const filter = await createRequestFilter(s.waf, { scope: "global", logger: b.deps.logger });
      if (filter) out.push(filter);
    }
    return out;
  },
};
