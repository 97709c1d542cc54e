/**
 * Every refusal the gateway makes has a code from this table, and every code maps
 * to exactly one HTTP status. `errorResponse` is the one place that renders the
 * common JSON error shape.
 */
import { withBodySize } from "../observe/body_size.ts";

export const ERRORS = {
  bad_request: { status: 400, message: "The request is malformed" },
  invalid_path: { status: 400, message: "The request path is not allowed" },
  ambiguous_credentials: {
    status: 400,
    message: "The request carries conflicting credentials",
  },
  missing_credentials: { status: 401, message: "Authentication is required" },
  invalid_credentials: { status: 401, message: "The credentials are not valid" },
  invalid_api_key: { status: 401, message: "The API key is not valid" },
  invalid_token: { status: 401, message: "The token is not valid" },
  token_expired: { status: 401, message: "The token has expired" },
  token_not_yet_valid: { status: 401, message: "The token is not valid yet" },
  invalid_issuer: { status: 401, message: "The token was issued by an untrusted issuer" },
  invalid_audience: { status: 401, message: "The token is not meant for this audience" },
  invalid_signature: { status: 401, message: "The token signature does not verify" },
  unknown_key: { status: 401, message: "The token is signed by an unknown key" },
  unsupported_algorithm: { status: 401, message: "The token algorithm is not allowed" },
  missing_claim: { status: 401, message: "The token lacks a required claim" },
  token_revoked: { status: 401, message: "The token has been revoked" },
  token_inactive: { status: 401, message: "The token is not active" },
  invalid_client_certificate: {
    status: 401,
    message: "The client certificate is missing or not trusted",
  },
  forbidden: { status: 403, message: "Access is forbidden" },
  insufficient_scope: { status: 403, message: "The credentials lack a required scope" },
  ip_denied: { status: 403, message: "Requests from this address are not allowed" },
  request_blocked: { status: 403, message: "The request was blocked by a filtering rule" },
  route_not_found: { status: 404, message: "No route matches this request" },
  unsupported_version: { status: 404, message: "The requested API version is not supported" },
  job_not_found: { status: 404, message: "No such job" },
  key_not_found: { status: 404, message: "No such API key" },
  method_not_allowed: { status: 405, message: "The method is not allowed for this route" },
  request_timeout: { status: 408, message: "The request was not received in time" },
  payload_too_large: { status: 413, message: "The request body is too large" },
  uri_too_long: { status: 414, message: "The request URI is too long" },
  unsupported_media_type: {
    status: 415,
    message: "The request body's media type or coding is not accepted",
  },
  expectation_failed: { status: 417, message: "The request's expectation cannot be met" },
  idempotency_conflict: {
    status: 422,
    message: "The idempotency key was used with a different request",
  },
  client_closed_request: { status: 499, message: "The client closed the request" },
  rate_limited: { status: 429, message: "Too many requests" },
  quota_exceeded: { status: 429, message: "The request quota is exhausted" },
  headers_too_large: { status: 431, message: "The request headers are too large" },
  internal_error: { status: 500, message: "The gateway failed to handle the request" },
  bad_gateway: { status: 502, message: "The upstream could not be reached" },
  upstream_error: { status: 502, message: "The upstream sent an invalid response" },
  circuit_open: { status: 503, message: "The upstream is unavailable" },
  upstream_overloaded: { status: 503, message: "The upstream is at capacity" },
  no_healthy_upstream: { status: 503, message: "No healthy upstream target is available" },
  store_unavailable: { status: 503, message: "A backing store is unavailable" },
  auth_unavailable: { status: 503, message: "The identity provider is unavailable" },
  shutting_down: { status: 503, message: "The gateway is shutting down" },
  not_ready: { status: 503, message: "The gateway has not loaded its config yet" },
  upstream_timeout: { status: 504, message: "The upstream did not answer in time" },
  /** `--workers N`: the admin API's main thread gave up waiting for a stuck worker. */
  worker_timeout: { status: 504, message: "A worker did not answer in time" },
  http_version_not_supported: { status: 505, message: "The HTTP version is not supported" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorDetails {
  message?: string;
  headers?: Record<string, string>;
  /** Extra members merged into the `error` object (for example `supported_versions`). */
  extra?: Record<string, unknown>;
}

/**
 * A refusal or failure with a code. Thrown from deep inside the pipeline (the
 * upstream client, a store) and rendered once by `errorResponse`.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
  constructor(code: ErrorCode, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(details.message ?? ERRORS[code].message, options);
    this.name = "GatewayError";
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
}

const JSON_TYPE = "application/json";
const encoder = new TextEncoder();

/** Renders the common error shape: `{"error": {"code", "message", "request_id"}}`. */
export function errorResponse(
  code: ErrorCode,
  requestId: string,
  details: ErrorDetails = {},
): Response {
  const body = encoder.encode(JSON.stringify({
    error: {
      code,
      message: details.message ?? ERRORS[code].message,
      request_id: requestId,
      ...details.extra,
    },
  }));
  // Headers set after construction: see toResponse in lib/proxy/response.ts for why.
  const res = new Response(body, { status: ERRORS[code].status });
  const h = res.headers;
  h.set("content-type", JSON_TYPE);
  if (details.headers) { for (const name in details.headers) h.set(name, details.headers[name]!); }
  return withBodySize(res, body.length);
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}
