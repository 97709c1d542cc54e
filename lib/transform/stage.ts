/** Request and response transforms of a route (issue: transforms). */
import type { Stage } from "../plan/chain.ts";

export const transformStage: Stage = {
  name: "transform",
  build: () => [],
};
