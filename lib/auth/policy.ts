/**
 * The auth policy of one route: remove identity headers the client sent, try
 * the route's providers in order (the first that establishes the caller wins),
 * check the route's scopes, hand the upstream the verified identity, and strip
 * the credentials unless the route forwards them.
 *
 * A provider that finds no credential of its kind is skipped; if none finds
 * one the answer is 401 `missing_credentials` challenging with every scheme
 * the route accepts. If credentials were presented and all failed, the first
 * failure is the answer. Providers that decide synchronously (keys, cached
 * tokens) keep the request free of extra promises.
 */
import type { RequestContext } from "../core/context.ts";
import type { Handler, Policy } from "../core/pipeline.ts";
import {
  type Authenticated,
  type AuthProvider,
  type AuthResult,
  challengeFor,
  type Refusal,
} from "./provider.ts";

export interface AuthPolicyOptions {
  providers: readonly AuthProvider[];
  /** Scopes the caller must hold, all of them. */
  scopes: readonly string[];
  forwardCredentials: boolean;
  /** Removes client-sent copies of identity headers. */
  stripIdentity: (ctx: RequestContext) => void;
}

type Failure = readonly [AuthProvider, Refusal];

export function createAuthPolicy(o: AuthPolicyOptions): Policy {
  const { providers, scopes, forwardCredentials, stripIdentity } = o;
  const n = providers.length;
  const everyChallenge = [...new Set(providers.map((p) => p.challenge))].join(", ");
  const routeProviders = providers.map((p) => p.name).join(",");

  const admit = (ctx: RequestContext, next: Handler, p: AuthProvider, a: Authenticated) => {
    ctx.identity = a.identity;
    ctx.consumer = a.consumer;
    ctx.identityHeaders = a.headers;
    for (const s of scopes) {
      if (!a.identity.scopes.has(s)) {
        ctx.authFailure = { provider: p.name, reason: "insufficient_scope" };
        return ctx.refuse("insufficient_scope", {
          headers: { "www-authenticate": challengeFor(p.challenge, "insufficient_scope", scopes) },
        });
      }
    }
    const edits = ctx.upstreamHeaders;
    for (const [name, value] of a.headers) edits.setPrepared(name, value);
    if (!forwardCredentials) { for (const q of providers) q.stripCredentials(ctx); }
    return next(ctx);
  };

  const refuse = (ctx: RequestContext, [p, r]: Failure) => {
    ctx.authFailure = { provider: p.name, reason: r.reason };
    // A 503 is no verdict on the credentials: nothing to challenge.
    const challenge = r.code === "auth_unavailable" ? null : challengeFor(p.challenge, r.code);
    return ctx.refuse(r.code, {
      ...(r.message !== undefined ? { message: r.message } : {}),
      ...(challenge !== null ? { headers: { "www-authenticate": challenge } } : {}),
    });
  };

  const missing = (ctx: RequestContext) => {
    ctx.authFailure = { provider: routeProviders, reason: "missing_credentials" };
    return ctx.refuse("missing_credentials", { headers: { "www-authenticate": everyChallenge } });
  };

  /** Tries providers from `from` on; `failed` is the first refusal so far. */
  const attempt = (
    ctx: RequestContext,
    next: Handler,
    from: number,
    failed: Failure | null,
  ): Response | Promise<Response> => {
    for (let i = from; i < n; i++) {
      const p = providers[i]!;
      const r = p.authenticate(ctx);
      if (r === null) continue;
      if (r instanceof Promise) return r.then((res) => settle(ctx, next, i, res, failed));
      if (r.ok) return admit(ctx, next, p, r);
      if (r.code === "ambiguous_credentials") return refuse(ctx, [p, r]);
      failed ??= [p, r];
    }
    return failed ? refuse(ctx, failed) : missing(ctx);
  };

  const settle = (
    ctx: RequestContext,
    next: Handler,
    i: number,
    r: AuthResult | null,
    failed: Failure | null,
  ): Response | Promise<Response> => {
    const p = providers[i]!;
    if (r === null) return attempt(ctx, next, i + 1, failed);
    if (r.ok) return admit(ctx, next, p, r);
    if (r.code === "ambiguous_credentials") return refuse(ctx, [p, r]);
    return attempt(ctx, next, i + 1, failed ?? [p, r]);
  };

  return (ctx, next) => {
    stripIdentity(ctx);
    return attempt(ctx, next, 0, null);
  };
}

/** A policy that only removes client-sent identity headers (routes without auth). */
export function stripIdentityPolicy(stripIdentity: (ctx: RequestContext) => void): Policy {
  return (ctx, next) => {
    stripIdentity(ctx);
    return next(ctx);
  };
}

/**
 * Compiles the removal of client-sent identity headers (lower-case names), in
 * any spelling with `_` for `-`: CGI-style upstreams (Django, Rack, PHP) read
 * `X_Consumer_Id` and `X-Consumer-Id` as one variable, HTTP_X_CONSUMER_ID, so
 * such a copy would pose as the verified one (why nginx drops underscored
 * names by default). One walk of the fields; only those of an identity name's
 * length are looked up.
 */
export function compileIdentityStrip(names: readonly string[]): (ctx: RequestContext) => void {
  const exact = new Set(names);
  const dashed = new Set(names.map(dashedName));
  const lengths: boolean[] = [];
  for (const n of names) lengths[n.length] = true;
  const anyUnderscored = names.some((n) => n.includes("_"));
  return (ctx) => {
    const fields = ctx.headers.list;
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i]![0];
      if (lengths[name.length] !== true) continue;
      if (
        exact.has(name) ||
        ((anyUnderscored || name.includes("_")) && dashed.has(dashedName(name)))
      ) ctx.upstreamHeaders.remove(name);
    }
  };
}

function dashedName(name: string): string {
  return name.replaceAll("_", "-");
}
