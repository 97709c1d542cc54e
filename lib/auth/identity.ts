/**
 * Turning what a provider verified into the identity the gateway acts on and
 * the headers that carry it upstream. Rendered once per identity (a key's
 * consumer, a verified token), so a request only copies prepared pairs.
 */
import type { Identity } from "../core/context.ts";
import type { AuthConsumer } from "./consumers.ts";
import type { IdentityHeadersConfig } from "./schema.ts";
import type { Authenticated } from "./provider.ts";
import { textHeaderValue } from "../proxy/header_edits.ts";

export const NO_SCOPES: ReadonlySet<string> = new Set();
/** RFC 6749 §3.3 scope-token: visible ASCII but `"` and `\`. */
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/**
 * Scopes of a token: `scope` (space-separated, RFC 8693/9068) or `scp` (string or list).
 * Only scope-tokens are kept (RFC 6749 §3.3): an element holding a space, a tab or another
 * space-like character is one scope here but two to an upstream that splits X-User-Scopes
 * on whitespace.
 */
export function scopesOf(claims: Readonly<Record<string, unknown>>, claim?: string): Set<string> {
  const names = claim ? [claim] : ["scope", "scp"];
  for (const name of names) {
    const v = claims[name];
    if (typeof v === "string") return scopeTokens(v.split(" "));
    if (Array.isArray(v)) return scopeTokens(v);
  }
  return new Set();
}

function scopeTokens(values: readonly unknown[]): Set<string> {
  return new Set(values.filter((s): s is string => typeof s === "string" && SCOPE.test(s)));
}

/** A claim as a header value: strings as they are, lists comma-joined, objects as JSON. */
function claimText(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== "object")) {
    return v.map((x) => listMember(String(x))).join(",");
  }
  return JSON.stringify(v);
}

/** What would not read back as this one list member. */
const NOT_A_BARE_MEMBER = /^$|^[ \t]|[ \t]$|[,"\\]/;

/**
 * A list member as RFC 9110 §5.6.1 writes it: a quoted-string when it holds a
 * comma or a quote (or is empty or edged with spaces). Joined bare, a group
 * `"viewer,admin"` would reach an upstream that splits on commas as `admin`.
 */
function listMember(s: string): string {
  return NOT_A_BARE_MEMBER.test(s) ? `"${s.replace(/["\\]/g, "\\$&")}"` : s;
}

/** The upstream headers one provider writes: identity fields and mapped claims. */
export class IdentityHeaders {
  private readonly claims: readonly (readonly [string, string])[];

  constructor(
    private readonly cfg: IdentityHeadersConfig,
    claimsToHeaders: Readonly<Record<string, string>> = {},
  ) {
    this.claims = Object.entries(claimsToHeaders);
  }

  /** Every header name it may write (lower-case). */
  get names(): string[] {
    const { consumer, subject, scopes } = this.cfg;
    return [consumer, subject, scopes, ...this.claims.map(([, h]) => h)]
      .filter((h): h is string => h !== null)
      .map((h) => h.toLowerCase());
  }

  authenticated(identity: Identity, consumer: AuthConsumer): Authenticated {
    const out: (readonly [string, string])[] = [];
    const { consumer: ch, subject: sh, scopes: scope } = this.cfg;
    if (ch !== null) out.push([ch, consumer.id]);
    if (sh !== null && identity.subject !== "") out.push([sh, identity.subject]);
    if (scope !== null && identity.scopes.size > 0) {
      out.push([scope, [...identity.scopes].join(" ")]);
    }
    for (const [claim, header] of this.claims) {
      const v = claimText(identity.claims[claim]);
      if (v !== null) out.push([header, v]);
    }
    out.push(...consumer.headers);
    const headers = out.map(([name, value]) =>
      [name.toLowerCase(), textHeaderValue(value)] as const
    );
    return { ok: true, identity, consumer, headers };
  }
}
