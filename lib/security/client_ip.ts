/**
 * The client's address. Forwarded headers are believed only from trusted
 * proxies: walking the chain from the right, trusted hops are skipped and the
 * first untrusted address is the client (RFC 7239 §7.5 reasoning). The chain is
 * X-Forwarded-For or the `for=` nodes of Forwarded, whichever the config names.
 */
import { type CidrSet, formatIp, parseIp } from "./cidr.ts";
import { forwardedFor } from "./forwarded.ts";

export type ClientIpHeader = "x-forwarded-for" | "forwarded";

export function clientIpOf(
  peer: string,
  chain: string | null,
  trusted: CidrSet,
  header: ClientIpHeader = "x-forwarded-for",
): { ip: string; peerTrusted: boolean } {
  if (trusted.size === 0 || !trusted.containsText(peer)) return { ip: peer, peerTrusted: false };
  if (!chain) return { ip: peer, peerTrusted: true };
  const hops = header === "forwarded" ? forwardedFor(chain) : chain.split(",");
  let candidate = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i];
    const ip = hop ? parseIp(stripPort(hop.trim())) : null;
    if (!ip) break; // garbage in the chain: stop at the last address we could trust
    candidate = formatIp(ip);
    if (!trusted.contains(ip)) break;
  }
  return { ip: candidate, peerTrusted: true };
}

function stripPort(s: string): string {
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    return end > 0 ? s.slice(1, end) : s;
  }
  const colon = s.indexOf(":");
  return colon > 0 && s.indexOf(":", colon + 1) < 0 ? s.slice(0, colon) : s;
}
