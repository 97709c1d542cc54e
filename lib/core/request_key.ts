/**
 * Keys derived from a request (`consumer`, `ip`, `ip/64`, `route`, `header:NAME`),
 * compiled once: used by rate limits, sticky splits and hash balancing.
 */
import type { RequestContext } from "./context.ts";
import { formatIp, isV4, parseIp } from "../security/cidr.ts";

export type RequestKey = (ctx: RequestContext) => string | null;

export function compileRequestKey(spec: string): RequestKey {
  // Auth sets a consumer with every identity (an unlisted subject's id is
  // namespaced by provider): a bare subject could equal a consumer's id.
  if (spec === "consumer") return (ctx) => ctx.consumer?.id ?? null;
  if (spec === "ip") return (ctx) => ctx.clientIp;
  if (spec === "ip/64") return (ctx) => clientNetwork(ctx.clientIp);
  if (spec === "route") return (ctx) => ctx.route?.name ?? null;
  if (spec.startsWith("header:")) {
    const name = spec.slice(7).toLowerCase();
    return (ctx) => ctx.headers.get(name);
  }
  throw new Error(`Unknown request key: ${spec}`);
}

/**
 * Several keys joined by "|"; null if any part is missing (`part` reads each, by
 * default as above). Every part but the last has its "\\" and "|" escaped: joined
 * bare, consumer "acme" with header "eu|web" was the key of "acme|eu" with "web".
 */
export function compileCompositeKey(
  specs: readonly string[],
  part: (spec: string) => RequestKey = compileRequestKey,
): RequestKey {
  if (specs.length === 1) return part(specs[0]!);
  const parts = specs.map(part);
  const last = parts.length - 1;
  return (ctx) => {
    let out = "";
    for (let i = 0; i < last; i++) {
      const v = parts[i]!(ctx);
      if (v === null) return null;
      out += `${escapePart(v)}|`;
    }
    const v = parts[last]!(ctx);
    return v === null ? null : out + v;
  };
}

/** A part with "\\" and "|" escaped, so that the parts' boundaries are the bare "|". */
function escapePart(v: string): string {
  return v.includes("|") || v.includes("\\") ? v.replace(/[\\|]/g, "\\$&") : v;
}

/**
 * An IPv6 address's /64 network, an IPv4 address whole. One IPv6 host is
 * given a /64 (RFC 6177) and picks addresses in it at will (privacy
 * addresses, RFC 8981): counted by address, it has 2^64 counters.
 */
export function clientNetwork(ip: string): string {
  if (!ip.includes(":")) return ip;
  const parsed = parseIp(ip);
  if (parsed === null) return ip;
  return isV4(parsed) ? formatIp(parsed) : `${formatIp([parsed[0], parsed[1], 0, 0])}/64`;
}
