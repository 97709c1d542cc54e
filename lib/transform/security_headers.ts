/**
 * The `security_headers` preset: hardening headers browsers act on, added
 * when the upstream did not set its own (an upstream that knows better, say
 * `X-Frame-Options: SAMEORIGIN` for a page meant to be framed, keeps its
 * value), and removal of the headers that advertise upstream software.
 * HSTS goes only on responses served over TLS (RFC 6797 §7.2).
 */
import type { ResponseHeaderEdit } from "./headers.ts";

const DEFAULTS: readonly (readonly [string, string])[] = [
  ["x-content-type-options", "nosniff"],
  ["x-frame-options", "DENY"],
  ["referrer-policy", "no-referrer"],
];
const HSTS = "max-age=31536000; includeSubDomains";
const REVEALING = ["server", "x-powered-by"];

export const applySecurityHeaders: ResponseHeaderEdit = (ctx, headers) => {
  for (const name of REVEALING) headers.delete(name);
  for (const [name, value] of DEFAULTS) {
    if (!headers.has(name)) headers.set(name, value);
  }
  if (ctx.listener.tls && !headers.has("strict-transport-security")) {
    headers.set("strict-transport-security", HSTS);
  }
};
