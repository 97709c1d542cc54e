/**
 * What every authentication provider offers the auth policy: read its
 * credential from a request, decide, and say how to challenge a client.
 */
import type { Consumer, Identity, RequestContext } from "../core/context.ts";
import { type ErrorCode, ERRORS } from "../core/errors.ts";

/** A caller a provider has established, with the headers that tell the upstream. */
export interface Authenticated {
  readonly ok: true;
  readonly identity: Identity;
  readonly consumer: Consumer;
  /** Identity headers for the upstream (lower-case name, safe value), rendered once per identity. */
  readonly headers: readonly (readonly [string, string])[];
}

export interface Refusal {
  readonly ok: false;
  readonly code: ErrorCode;
  /** Why, for logs and the `auth failures by reason` metric: a short, bounded token. */
  readonly reason: string;
  /** A message more precise than the code's own, for the client. */
  readonly message?: string;
}

export type AuthResult = Authenticated | Refusal;

export function refusal(code: ErrorCode, reason: string = code, message?: string): Refusal {
  return message === undefined ? { ok: false, code, reason } : { ok: false, code, reason, message };
}

export const AMBIGUOUS = refusal("ambiguous_credentials");

export interface AuthProvider {
  /** Name of the provider in `auth:`. */
  readonly name: string;
  /** Scheme and realm of its `WWW-Authenticate` challenge: `Bearer realm="gateway"`. */
  readonly challenge: string;
  /** `null` when the request carries no credential for this provider. */
  authenticate(ctx: RequestContext): AuthResult | null | Promise<AuthResult | null>;
  /** Removes its credential from the request sent upstream. */
  stripCredentials(ctx: RequestContext): void;
}

/** RFC 6750 §3.1 error for a refusal's status; a missing credential gets none. */
function challengeError(code: ErrorCode): string | null {
  if (code === "missing_credentials") return null;
  const status = ERRORS[code].status;
  if (status === 400) return "invalid_request";
  if (status === 401) return "invalid_token";
  if (status === 403) return "insufficient_scope";
  return null;
}

/** The `WWW-Authenticate` value for a refusal by a provider (or a list of them). */
export function challengeFor(base: string, code: ErrorCode, scopes?: readonly string[]): string {
  const error = challengeError(code);
  if (error === null) return base;
  let out = `${base}, error="${error}", error_description="${ERRORS[code].message}"`;
  if (code === "insufficient_scope" && scopes?.length) out += `, scope="${scopes.join(" ")}"`;
  return out;
}
