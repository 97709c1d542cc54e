/**
 * The request head sent upstream: end-to-end headers of the client's request,
 * minus hop-by-hop ones (RFC 9110 §7.6.1) and those the gateway owns, plus
 * X-Forwarded-*, Via, the request id and, when the gateway traces, its trace
 * context (otherwise the caller's trace fields are end-to-end ones like any other).
 */
import type { RequestContext } from "../core/context.ts";
import { formatTraceparent } from "../observe/trace.ts";
import { HOP_BY_HOP } from "./http1/response_head.ts";
import { NameSet } from "../core/name_set.ts";
import { connectionOptions, optionSet } from "../core/connection_options.ts";

/** Fields never copied from the client: framing, hop-by-hop, and those rebuilt below. */
const NOT_COPIED_NAMES = [
  ...HOP_BY_HOP,
  "host",
  "content-length",
  "expect",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-real-ip",
  "forwarded",
  "via",
];
const NOT_COPIED = new NameSet(NOT_COPIED_NAMES);
/** When the gateway traces, the trace fields are its own hop's too. */
const NOT_COPIED_TRACED = new NameSet([...NOT_COPIED_NAMES, "traceparent", "tracestate"]);

/**
 * `Proxy` and every `Proxy-*` field: meant for proxies, never for an origin
 * (`Proxy` becomes HTTP_PROXY in a CGI environment: httpoxy). The first
 * character settles nearly every name.
 */
function isProxyField(name: string): boolean {
  return name.charCodeAt(0) === 112 && name.startsWith("proxy") &&
    (name.length === 5 || name.charCodeAt(5) === 45);
}

export interface ForwardOptions {
  /** Host header value for the target (`host[:port]`). */
  authority: string;
  preserveHost: boolean;
  /** The pseudonym appended to Via, after the version the request came in (`1.1 gateway`). */
  via: string;
  /** Lower-case name of the request id header. */
  requestIdHeader: string;
  /** Whether the peer is a trusted proxy whose X-Forwarded-* may be extended. */
  trustedPeer: boolean;
  /** Static `name: value\r\n` lines configured on the upstream. */
  extraBlock: string;
  /** The names in `extraBlock` (null when none): the client's own copies are not forwarded. */
  extraNames: NameSet | null;
}

export function buildHeaderBlock(ctx: RequestContext, o: ForwardOptions): string {
  const incoming = ctx.headers;
  const edits = ctx.upstreamHeaders;
  const connection = incoming.get("connection");
  const named = connection ? optionSet(connectionOptions(connection)) : null;
  const requestIdHeader = o.requestIdHeader;
  const replaced = edits.replaced;
  const extraNames = o.extraNames;
  const trace = ctx.trace;
  const notCopied = trace === null ? NOT_COPIED : NOT_COPIED_TRACED;
  let block = "";
  // As received: in order, and a repeated field as repeated lines.
  const fields = incoming.list;
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i]!;
    if (notCopied.has(name) || name === requestIdHeader || isProxyField(name)) continue;
    if (named !== null && named.has(name)) continue;
    if (replaced?.has(name)) continue;
    if (extraNames !== null && extraNames.has(name)) continue;
    block += `${name}: ${value}\r\n`;
  }
  // The authority the request was routed by: an absolute-form target's, not the Host it overrides,
  // or HTTP/2's `:authority` (RFC 9113 §8.3.1); none when the listener made it up.
  const routedAuthority = ctx.incoming.authorityNamed ? ctx.incoming.authority : "";
  block += `host: ${o.preserveHost && routedAuthority ? routedAuthority : o.authority}\r\n`;

  const priorFor = o.trustedPeer ? incoming.get("x-forwarded-for") : null;
  block += `x-forwarded-for: ${priorFor ? `${priorFor}, ${ctx.peerIp}` : ctx.peerIp}\r\n`;
  const priorProto = o.trustedPeer ? incoming.get("x-forwarded-proto") : null;
  block += `x-forwarded-proto: ${priorProto ?? (ctx.listener.tls ? "https" : "http")}\r\n`;
  const priorHost = o.trustedPeer ? incoming.get("x-forwarded-host") : null;
  if (priorHost ?? routedAuthority) {
    block += `x-forwarded-host: ${priorHost ?? routedAuthority}\r\n`;
  }
  if (o.trustedPeer) {
    const fwd = incoming.get("forwarded");
    if (fwd) block += `forwarded: ${fwd}\r\n`;
  }
  const priorVia = incoming.get("via");
  // The received protocol's version (RFC 9110 §7.6.3): 1.0 for an HTTP/1.0 client.
  const version = ctx.incoming.http10 ? "1.0" : "1.1";
  block += `via: ${priorVia ? `${priorVia}, ` : ""}${version} ${o.via}\r\n`;
  block += `${requestIdHeader}: ${ctx.requestId}\r\n`;
  if (trace !== null) {
    block += `traceparent: ${formatTraceparent(trace)}\r\n`;
    if (trace.state) block += `tracestate: ${trace.state}\r\n`;
  }
  // What the gateway wrote above is its own, the request id as X-Forwarded-* and Via are.
  if (replaced !== null) {
    for (const [name, values] of replaced) {
      if (values === null || notCopied.has(name) || name === requestIdHeader) continue;
      for (const v of values) block += `${name}: ${v}\r\n`;
    }
  }
  if (edits.appended !== null) {
    for (const [name, values] of edits.appended) {
      if (notCopied.has(name) || name === requestIdHeader) continue;
      for (const v of values) block += `${name}: ${v}\r\n`;
    }
  }
  return block + o.extraBlock;
}
