/** Whole-config checks of async routes (registered in `config/semantics.ts`). */
import { type PartialConfig, validItems } from "../config/partial.ts";
import type { SemanticIssue } from "../config/semantics.ts";

/**
 * A job names one upstream, so `aggregate` does not combine with `async`.
 * `GET /jobs/{id}` accepts the credentials of every async route, so async routes
 * must agree on whether callers authenticate: jobs created anonymously could not
 * be read back by a caller who has no credentials to present.
 */
export function asyncRouteIssues(c: PartialConfig): SemanticIssue[] {
  const asyncRoutes = validItems(c.routes).flatMap(({ item: r, i }) => (r.async ? [{ r, i }] : []));
  const out: SemanticIssue[] = asyncRoutes.filter(({ r }) => r.aggregate).map(({ i }) => ({
    path: ["routes", i, "async"],
    key: true,
    message:
      "async cannot be combined with aggregate: a job names one upstream (upstream or split)",
  }));
  const authed = asyncRoutes.find(({ r }) => r.auth?.length);
  if (!authed) return out;
  return out.concat(
    asyncRoutes.filter(({ r }) => !r.auth?.length).map(({ i }) => ({
      path: ["routes", i, "async"],
      key: true,
      message: `async routes must all use auth or none: GET /jobs/{id} authenticates with the ` +
        `providers of every async route (route "${authed.r.name}" uses auth), so jobs created ` +
        `here without credentials could not be read back`,
    })),
  );
}
