/** CORS of a route: preflight answered here, response headers added (issue: transforms). */
import type { Stage } from "../plan/chain.ts";

export const corsStage: Stage = {
  name: "cors",
  build: () => [],
};
