/**
 * Renders a verdict into response headers: the IETF `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the full limit is
 * back), the `X-RateLimit-*` variants when configured (`X-RateLimit-Reset` is a
 * Unix time in seconds, as most clients of that convention expect) and, on a
 * refusal, `Retry-After` in seconds, which both resets then name.
 */
import type { Verdict } from "./algorithms/index.ts";
import type { Limit } from "./limit.ts";
import type { FieldEditor } from "../core/response_fields.ts";

export function setLimitHeaders(h: FieldEditor, limit: Limit, v: Verdict, now: number): void {
  setFields(h, limit, v.remaining, v.resetMs, now);
}

/**
 * A refusal's fields. Its reset is the Retry-After instant: the draft asks that
 * both name the same point in time, and "the full limit back" (a bucket full, a
 * sliding count gone) can be much later than the next request that passes.
 */
export function setRefusalHeaders(h: FieldEditor, limit: Limit, v: Verdict, now: number): void {
  const wait = retryAfterSeconds(v);
  h.set("retry-after", String(wait));
  setFields(h, limit, v.remaining, wait * 1000, now);
}

function setFields(
  h: FieldEditor,
  limit: Limit,
  remainingUnits: number,
  resetMs: number,
  now: number,
): void {
  const limitText = String(limit.algorithm.limit);
  const remaining = String(remainingUnits);
  h.set("ratelimit-limit", limitText);
  h.set("ratelimit-remaining", remaining);
  h.set("ratelimit-reset", String(Math.ceil(resetMs / 1000)));
  if (limit.headers === "ietf_and_x") {
    h.set("x-ratelimit-limit", limitText);
    h.set("x-ratelimit-remaining", remaining);
    h.set("x-ratelimit-reset", String(Math.ceil((now + resetMs) / 1000)));
  }
}

/** Whole seconds to wait, at least 1 (`Retry-After: 0` invites an immediate retry). */
function retryAfterSeconds(v: Verdict): number {
  return Math.max(1, Math.ceil(v.retryAfterMs / 1000));
}
