/** IP allow/deny lists, size limits and request filtering of a route (issue: security edge). */
import type { Stage } from "../plan/chain.ts";

export const securityStage: Stage = {
  name: "security",
  build: () => [],
};
