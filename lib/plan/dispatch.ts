/** Routing a request to its route's chain, or refusing it with 404, 405 or an unknown version. */
import type { Handler } from "../core/pipeline.ts";
import type { RouteResult, RouteTable } from "../router/table.ts";
import type { VersionNegotiator } from "../router/version.ts";
import type { CompiledRoute } from "./plan.ts";
import type { RequestContext } from "../core/context.ts";

export function createDispatch(
  table: RouteTable<CompiledRoute>,
  versions: VersionNegotiator | null,
): Handler {
  return (ctx) => {
    const result = routeOf(table, ctx);
    switch (result.kind) {
      case "found": {
        const route = result.route;
        ctx.route = route;
        ctx.params = result.params;
        ctx.version = result.version;
        if (route.rewrite) {
          ctx.upstreamPath = route.rewrite(ctx.path, result.matchedLength) + ctx.query;
        }
        return route.handler(ctx);
      }
      case "repeated":
        return ctx.refuse("bad_request", { message: `Repeated ${result.field}` });
      case "method_not_allowed":
        return ctx.refuse("method_not_allowed", { headers: { allow: result.allow } });
      case "unsupported_version":
        return ctx.refuse("unsupported_version", {
          message: `API version ${result.requested} is not supported`,
          headers: versions ? { [versions.supportedHeader]: versions.headerValue } : {},
          extra: {
            requested_version: result.requested,
            supported_versions: versions?.supported ?? [],
          },
        });
      default:
        return ctx.refuse("route_not_found");
    }
  };
}

/**
 * A CORS preflight is routed by the method it asks about, so the route's CORS
 * policy answers it; only a route with such a policy: elsewhere an OPTIONS
 * shaped like one is an OPTIONS, held to the route's methods.
 */
function routeOf(
  table: RouteTable<CompiledRoute>,
  ctx: RequestContext,
): RouteResult<CompiledRoute> {
  const asked = preflightMethod(ctx);
  if (asked !== null) {
    const result = table.match(Object.create(ctx, { method: { value: asked } }));
    if (result.kind === "found" && result.route.policies.includes("cors")) return result;
  }
  return table.match(ctx);
}

function preflightMethod(ctx: RequestContext): string | null {
  if (ctx.method !== "OPTIONS" || !ctx.headers.has("origin")) return null;
  return ctx.headers.get("access-control-request-method")?.toUpperCase() ?? null;
}
