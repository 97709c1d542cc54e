/**
 * Routes are bucketed by their path's first segment. Up to 8 segments a
 * request's bucket is found by comparing in place, past that through a Map:
 * both ways must route every path alike.
 */
import { assertEquals } from "../helpers/assert.ts";
import { RouteTable } from "../../lib/router/table.ts";
import { HeaderFields } from "../../lib/core/header_fields.ts";
import { QueryParams } from "../../lib/core/query_params.ts";
import type { MatchConfig } from "../../lib/router/schema.ts";

const ROUTES: { name: string; match: MatchConfig; priority?: number }[] = [
  // First by priority, so a bucket of a shorter segment is looked at before a longer one's.
  { name: "a", match: { path: "/a" }, priority: 10 },
  { name: "ab", match: { path: "/ab" } },
  { name: "cd", match: { path: "/cd" } },
  { name: "api-users", match: { path: "/api/users/{id}" } },
  { name: "api", match: { path: "/api" } },
  { name: "exact", match: { path_exact: "/exact" } },
  { name: "rest", match: { path: "/" } },
];

/** Routes under segments no request below uses: enough to take the table past 8 segments. */
const FILLERS = Array.from({ length: 8 }, (_, i) => ({
  name: `filler-${i}`,
  match: { path: `/filler${i}` } as MatchConfig,
}));

function tableOf(routes: typeof ROUTES): (path: string) => string | null {
  const table = new RouteTable(
    routes.map((r) => ({ payload: r.name, match: r.match, priority: r.priority })),
    null,
  );
  return (path) => {
    const r = table.match({
      method: "GET",
      path,
      host: "localhost",
      headers: new HeaderFields([]),
      queryParams: new QueryParams(""),
    });
    return r.kind === "found" ? r.route : null;
  };
}

const PATHS: [string, string][] = [
  ["/a", "a"],
  ["/a/x", "a"],
  ["/ab", "ab"],
  ["/ab/x", "ab"],
  ["/abc", "rest"],
  ["/cd/x", "cd"],
  ["/ce/x", "rest"],
  ["/api", "api"],
  ["/api/users/7", "api-users"],
  ["/api/orders", "api"],
  ["/apix/users/7", "rest"],
  ["/ap", "rest"],
  ["/exact", "exact"],
  ["/exact/more", "rest"],
  ["/", "rest"],
  ["/filler1", "rest"],
];

Deno.test("router: a path's first segment finds its bucket by comparing, as by a Map", () => {
  const compared = tableOf(ROUTES);
  const hashed = tableOf([...ROUTES, ...FILLERS]);
  for (const [path, route] of PATHS) {
    assertEquals(compared(path), route, `${path} with ${ROUTES.length} routes`);
    assertEquals(hashed(path), path === "/filler1" ? "filler-1" : route, `${path} with fillers`);
  }
});
