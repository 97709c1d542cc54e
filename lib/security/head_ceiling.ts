/**
 * Which head limits run where. The global policy enforces the highest limit any
 * route allows (so an oversized head is refused before routing); a route whose
 * own limit is tighter than that gets its own check after routing. With no
 * route overrides, one global check is all a request pays.
 */
import type { GatewayConfig, RouteConfig } from "../config/schema.ts";
import type { HeadLimits } from "./head_limits.ts";

function routeLimits(r: RouteConfig, c: GatewayConfig): HeadLimits {
  const s = c.security;
  return {
    maxUriBytes: r.limits?.max_uri_bytes ?? s.max_uri_bytes,
    maxHeaderBytes: r.limits?.max_header_bytes ?? s.max_header_bytes,
    maxHeaders: r.limits?.max_headers ?? s.max_headers,
  };
}

const ceilings = new WeakMap<GatewayConfig, HeadLimits>();

/** The limits checked before routing: the loosest that any route accepts. */
export function globalHeadLimits(c: GatewayConfig): HeadLimits {
  const known = ceilings.get(c);
  if (known) return known;
  const all = c.routes.map((r) => routeLimits(r, c));
  const s = c.security;
  const limits = {
    maxUriBytes: Math.max(s.max_uri_bytes, ...all.map((l) => l.maxUriBytes)),
    maxHeaderBytes: Math.max(s.max_header_bytes, ...all.map((l) => l.maxHeaderBytes)),
    maxHeaders: Math.max(s.max_headers, ...all.map((l) => l.maxHeaders)),
  };
  ceilings.set(c, limits);
  return limits;
}

/** The route's limits when the global check does not already cover them, else null. */
export function routeHeadLimits(r: RouteConfig, c: GatewayConfig): HeadLimits | null {
  const own = routeLimits(r, c);
  const g = globalHeadLimits(c);
  return own.maxUriBytes < g.maxUriBytes || own.maxHeaderBytes < g.maxHeaderBytes ||
      own.maxHeaders < g.maxHeaders
    ? own
    : null;
}
