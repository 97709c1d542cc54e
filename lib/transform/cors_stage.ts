/** CORS of a route (its own `cors`, else the top-level one): preflight answered here. */
import type { Stage } from "../plan/chain.ts";
import { corsPolicy } from "./cors.ts";

export const corsStage: Stage = {
  name: "cors",
  build: (route, _index, b) => {
    const c = route.cors ?? b.config.cors;
    return c ? [corsPolicy(c)] : [];
  },
};
