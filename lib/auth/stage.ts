/** Authentication providers a route accepts, then its required scopes (issue: auth). */
import type { Stage } from "../plan/chain.ts";

export const authStage: Stage = {
  name: "auth",
  build: () => [],
};
