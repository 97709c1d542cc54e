/**
 * The entry of every request on a public listener: build the context (once:
 * normalised path, client address, request id, trace), run the plan, and make
 * sure whatever happens the client gets an answer in the common shape. The
 * plan's observer sees every request begin and end (metrics, access log, trace).
 */
import { type ClientCertificate, type ListenerInfo, RequestContext } from "../core/context.ts";
import { errorResponse, GatewayError } from "../core/errors.ts";
import { responseFields } from "../core/parsed_response.ts";
import { HeaderEdits } from "../proxy/header_edits.ts";
import { normalisePath } from "../security/path.ts";
import { clientIpOf } from "../security/client_ip.ts";
import { parseTraceparent } from "../observe/trace.ts";
import { errorFields } from "../observe/logger.ts";
import type { PlanHolder } from "../plan/holder.ts";
import type { Plan, PlanSettings } from "../plan/plan.ts";
import type { RuntimeDeps } from "../plan/deps.ts";
import type { RefusedRequest } from "./http1/server.ts";
import { incomingOf, type IncomingRequest } from "./incoming.ts";
import { monoNow } from "../core/clock.ts";

export interface ServeInfo {
  remoteAddr: Deno.Addr;
  /** The client's abort signal, made on first use (watching a connection has a cost). */
  signal?: () => AbortSignal;
  /** mTLS listeners: the verified client certificate, or why a presented one was not trusted. */
  clientCert?: ClientCertificate | null;
  clientCertError?: string | null;
  /** The peer is a trusted proxy, but forwarded headers did not come from it (PROXY LOCAL/UNKNOWN). */
  forwardedUntrusted?: boolean;
}

export type ServeHandler = (req: IncomingRequest, info: ServeInfo) => Promise<Response>;

const REQUEST_ID = /^[A-Za-z0-9._:\-]{1,200}$/;

export function createHandler(
  holder: PlanHolder,
  listener: ListenerInfo,
  deps: RuntimeDeps,
): ServeHandler {
  return (req, info) => {
    const plan = holder.current;
    if (plan === null) return Promise.resolve(errorResponse("shutting_down", crypto.randomUUID()));
    plan.inFlight++;
    return serve(holder, plan, req, info, listener, deps);
  };
}

/**
 * Answers requests the HTTP/1.1 server refused before the handler (a malformed
 * or oversized head, a head that came too slowly) through the current plan's
 * observer, so they are counted and logged like every other refusal.
 */
export function createRefusalRecorder(
  holder: PlanHolder,
  listener: ListenerInfo,
  deps: RuntimeDeps,
): (r: RefusedRequest) => Response {
  return (r) => {
    const plan = holder.current;
    if (plan === null) return errorResponse(r.code, crypto.randomUUID(), { message: r.message });
    const peer = peerAddress(r.remoteAddr);
    const target = withoutUserinfo(r.target ?? "");
    const q = target.indexOf("?");
    const ctx = new RequestContext(
      REFUSED_REQUEST,
      r.method ?? "",
      // A refused target can be 64 KiB of anything: the log keeps its start.
      (q < 0 ? target : target.slice(0, q)).slice(0, REFUSED_TARGET_CHARS),
      q < 0 ? "" : target.slice(q, q + REFUSED_TARGET_CHARS),
      r.host === null ? "" : hostOf(r.host),
      peer,
      peer,
      listener,
      deps.clock.now(),
      r.startMono,
      crypto.randomUUID(),
      plan.settings.tracing ? parseTraceparent(null, null) : null,
      new HeaderEdits(),
    );
    const observer = plan.settings.observer;
    observer.begin(ctx);
    const res = ctx.refuse(r.code, { message: r.message });
    res.headers.set(plan.settings.requestIdHeader, ctx.requestId);
    return observer.end(ctx, res);
  };
}

/**
 * A refused target as the access log may keep it: userinfo (`user:password@`)
 * is dropped from its authority, which ends at the first "/" here, wherever a
 * URL parser would end it, so that no part of a password stays.
 */
function withoutUserinfo(target: string): string {
  if (target.charCodeAt(0) === 47) return target; // origin-form: no authority
  const scheme = target.indexOf("://");
  const authority = scheme < 0 ? 0 : scheme + 3;
  const path = target.indexOf("/", authority);
  const at = target.lastIndexOf("@", (path < 0 ? target.length : path) - 1);
  return at < authority ? target : target.slice(0, authority) + target.slice(at + 1);
}

/** Stands in for the request a refused head never became (the context needs one). */
const REFUSED_REQUEST = incomingOf(new Request("http://refused.invalid/"));
const REFUSED_TARGET_CHARS = 256;

export function peerAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return "127.0.0.1";
  const h = addr.hostname;
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; one spelling keeps IP keys and logs stable.
  return h.startsWith("::ffff:") && h.includes(".") ? h.slice(7) : h;
}

/** Serves one request on `plan`, whose in-flight count it releases when done. */
async function serve(
  holder: PlanHolder,
  plan: Plan,
  req: IncomingRequest,
  info: ServeInfo,
  listener: ListenerInfo,
  deps: RuntimeDeps,
): Promise<Response> {
  // Once the observer has the response, it releases the plan when the body ends.
  let handedOver = false;
  try {
    const s = plan.settings;
    const { ctx, pathProblem } = newContext(s, req, info, listener, deps);
    const observer = s.observer;
    observer.begin(ctx);

    let res: Response;
    if (pathProblem !== null) {
      res = ctx.refuse("invalid_path", {
        message: `The request path is not allowed: ${pathProblem}`,
      });
    } else {
      try {
        res = await plan.handle(ctx);
      } catch (e) {
        // A policy reading the body can fail with a refusal (a body deadline, a size limit).
        if (e instanceof GatewayError) res = ctx.refuse(e.code, e.details);
        else {
          deps.logger.error("unhandled error while serving a request", {
            request_id: ctx.requestId,
            route: ctx.route?.name ?? null,
            ...errorFields(e),
            stack: e instanceof Error ? e.stack : undefined,
          });
          res = ctx.refuse("internal_error");
        }
      }
    }
    try {
      responseFields(res).set(s.requestIdHeader, ctx.requestId);
    } catch {
      // Immutable headers (a fetched response): rebuild to add the id.
      res = new Response(res.body, res);
      res.headers.set(s.requestIdHeader, ctx.requestId);
    }
    if (holder.closeConnections) responseFields(res).set("connection", "close");
    const observed = observer.end(ctx, res, plan, holder.releaser);
    handedOver = true;
    return observed;
  } finally {
    if (!handedOver) holder.release(plan);
  }
}

/** The request's context (path normalised, client address, request id, trace), and why its path is refused. */
function newContext(
  s: PlanSettings,
  req: IncomingRequest,
  info: ServeInfo,
  listener: ListenerInfo,
  deps: RuntimeDeps,
): { ctx: RequestContext; pathProblem: string | null } {
  const peer = peerAddress(info.remoteAddr);
  const headers = req.headers;
  const target = req.target;
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q);
  const norm = normalisePath(rawPath, s.mergeSlashes, s.allowPathParameters);

  const client = s.trustedProxies.size === 0 || info.forwardedUntrusted
    ? { ip: peer, peerTrusted: false }
    : clientIpOf(peer, headers.get(s.clientIpHeader), s.trustedProxies, s.clientIpHeader);
  const incomingId = s.trustRequestId ? headers.get(s.requestIdHeader) : null;
  const requestId = incomingId !== null && REQUEST_ID.test(incomingId)
    ? incomingId
    : crypto.randomUUID();
  const ctx = new RequestContext(
    req,
    req.method,
    norm.ok ? norm.path : rawPath,
    query,
    hostOf(req.authority),
    peer,
    client.ip,
    listener,
    deps.clock.now(),
    monoNow(),
    requestId,
    s.tracing ? parseTraceparent(headers.get("traceparent"), headers.get("tracestate")) : null,
    new HeaderEdits(),
  );
  ctx.peerTrusted = client.peerTrusted;
  if (info.signal) ctx.signalOf = info.signal;
  if (info.clientCert) ctx.clientCert = info.clientCert;
  if (info.clientCertError) ctx.clientCertError = info.clientCertError;
  const pathProblem = !norm.ok
    ? norm.reason
    : query.includes("#")
    ? "fragment in request target"
    : null;
  return { ctx, pathProblem };
}

/**
 * Lower-case host without port or one trailing dot; brackets kept off IPv6
 * literals. `authority` has no userinfo: listeners refuse one (see validAuthority).
 */
export function hostOf(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return (end > 0 ? authority.slice(1, end) : authority).toLowerCase();
  }
  const colon = authority.indexOf(":");
  let end = colon >= 0 ? colon : authority.length;
  // `admin.example.com.` is the same name fully qualified, and upstreams (nginx) serve it as such.
  if (end > 1 && authority.charCodeAt(end - 1) === 46) end--;
  return authority.slice(0, end).toLowerCase();
}
