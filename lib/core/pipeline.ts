/**
 * Policies compose onion-style: each gets the request context and the next
 * handler, and may answer itself (a refusal, a cache hit) or call `next` and
 * work on its response. Chains are composed once per route when the plan is
 * built, so a request allocates no closures to walk its chain.
 */
import type { RequestContext } from "./context.ts";

export type Handler = (ctx: RequestContext) => Promise<Response> | Response;
export type Policy = (ctx: RequestContext, next: Handler) => Promise<Response> | Response;

/** A named policy instance, so that a plan can say what a route's chain holds. */
export interface NamedPolicy {
  name: string;
  policy: Policy;
}

export function compose(policies: readonly NamedPolicy[], terminal: Handler): Handler {
  let handler = terminal;
  for (let i = policies.length - 1; i >= 0; i--) {
    const policy = policies[i]!.policy;
    const next = handler;
    handler = (ctx) => policy(ctx, next);
  }
  return handler;
}
