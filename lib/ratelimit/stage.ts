/** Rate limits and quotas of a route, its consumer's plan and the defaults (issue: rate limiting). */
import type { Stage } from "../plan/chain.ts";

export const rateLimitStage: Stage = {
  name: "ratelimit",
  build: () => [],
};
