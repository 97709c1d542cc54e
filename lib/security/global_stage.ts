/** Global IP rules, limits and request filtering, before routing (issue: security edge). */
import type { GlobalStage } from "../plan/chain.ts";

export const globalSecurityStage: GlobalStage = {
  name: "security",
  build: () => [],
};
