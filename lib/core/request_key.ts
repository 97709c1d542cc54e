/**
 * Keys derived from a request (`consumer`, `ip`, `route`, `header:NAME`), compiled
 * once: used by rate limits, sticky splits and hash balancing.
 */
import type { RequestContext } from "./context.ts";

export type RequestKey = (ctx: RequestContext) => string | null;

export function compileRequestKey(spec: string): RequestKey {
  // Auth sets a consumer with every identity (an unlisted subject's id is
  // namespaced by provider): a bare subject could equal a consumer's id.
  if (spec === "consumer") return (ctx) => ctx.consumer?.id ?? null;
  if (spec === "ip") return (ctx) => ctx.clientIp;
  if (spec === "route") return (ctx) => ctx.route?.name ?? null;
  if (spec.startsWith("header:")) {
    const name = spec.slice(7).toLowerCase();
    return (ctx) => ctx.headers.get(name);
  }
  throw new Error(`Unknown request key: ${spec}`);
}

/** Several keys joined; null if any part is missing (`part` reads each, by default as above). */
export function compileCompositeKey(
  specs: readonly string[],
  part: (spec: string) => RequestKey = compileRequestKey,
): RequestKey {
  if (specs.length === 1) return part(specs[0]!);
  const parts = specs.map(part);
  return (ctx) => {
    let out = "";
    for (let i = 0; i < parts.length; i++) {
      const v = parts[i]!(ctx);
      if (v === null) return null;
      out += i === 0 ? v : `|${v}`;
    }
    return out;
  };
}
