/**
 * Renders a verdict into response headers: the IETF `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the full limit is
 * back), the `X-RateLimit-*` variants when configured (`X-RateLimit-Reset` is a
 * Unix time in seconds, as most clients of that convention expect) and, on a
 * refusal, `Retry-After` in seconds.
 */
import type { Verdict } from "./algorithms/index.ts";
import type { Limit } from "./limit.ts";
import type { FieldEditor } from "../core/response_fields.ts";

export function setLimitHeaders(h: FieldEditor, limit: Limit, v: Verdict, now: number): void {
  const limitText = String(limit.algorithm.limit);
  const remaining = String(v.remaining);
  h.set("ratelimit-limit", limitText);
  h.set("ratelimit-remaining", remaining);
  h.set("ratelimit-reset", String(Math.ceil(v.resetMs / 1000)));
  if (limit.headers === "ietf_and_x") {
    h.set("x-ratelimit-limit", limitText);
    h.set("x-ratelimit-remaining", remaining);
    h.set("x-ratelimit-reset", String(Math.ceil((now + v.resetMs) / 1000)));
  }
}

/** Whole seconds to wait, at least 1 (`Retry-After: 0` invites an immediate retry). */
export function retryAfterSeconds(v: Verdict): string {
  return String(Math.max(1, Math.ceil(v.retryAfterMs / 1000)));
}
