/** Who a job belongs to: the only caller that may read it back. */
import type { RequestContext } from "../core/context.ts";

/**
 * The configured consumer when auth names one, else the authenticated subject
 * (per provider), else "" for anonymous callers, whose jobs anyone holding the
 * (unguessable) id may read.
 */
export function jobOwner(ctx: RequestContext): string {
  if (ctx.consumer !== null) return `consumer:${ctx.consumer.id}`;
  if (ctx.identity !== null) return `subject:${ctx.identity.provider}:${ctx.identity.subject}`;
  return "";
}

/**
 * Whose Idempotency-Keys a request's is one of: its owner's, and an anonymous
 * caller's own address's. One space for all anonymous callers would hand a
 * guessed key's job id, and with it the job's result, to anyone.
 */
export function idempotencyScope(ctx: RequestContext, owner: string): string {
  return owner !== "" ? owner : `anonymous:${ctx.clientIp}`;
}
