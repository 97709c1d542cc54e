/** Response cache of a route (issue: transforms/cache). */
import type { Stage } from "../plan/chain.ts";

export const cacheStage: Stage = {
  name: "cache",
  build: () => [],
};
