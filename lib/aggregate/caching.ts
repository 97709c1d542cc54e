/**
 * The caching fields of a merged answer. A cache judges the merged answer as
 * one response, so it must be as restrictive as its most restrictive part
 * (RFC 9111 §3, §5.2.2): one personal part makes the whole answer personal,
 * one short-lived part makes it short-lived.
 */
import { deltaSeconds } from "../cache/freshness.ts";

/** Directives that carry over from any part as they are. */
const RESTRICTIONS = ["no-store", "private", "no-cache", "must-revalidate", "proxy-revalidate"];
const RESTRICTION_SET = new Set(RESTRICTIONS);

export class MergedCaching {
  private readonly restrictions = new Set<string>();
  /** Remaining freshness for any cache (max-age, else Expires), in seconds. */
  private ownSeconds: number | null = null;
  /** Remaining freshness for a shared cache (s-maxage, else the above). */
  private sharedSeconds: number | null = null;
  private anySMaxAge = false;
  private readonly vary = new Set<string>();

  /** `unseen`: request headers the parts never receive, so their `Vary` on them is moot. */
  constructor(private readonly unseen: ReadonlySet<string>) {}

  /** Folds in one part's answer fields (lower-case names), received at `now` (ms). */
  add(headers: readonly (readonly [string, string])[], now: number): void {
    let directives = "";
    let expires: string | null = null;
    let date: string | null = null;
    let age = 0;
    for (const [name, value] of headers) {
      if (name === "cache-control") directives += `,${value}`;
      else if (name === "expires") expires = value;
      else if (name === "date") date = value;
      else if (name === "age") age = deltaSeconds(value);
      else if (name === "vary") this.addVary(value);
      // The cookie is not passed on, but the answer was made for this caller.
      else if (name === "set-cookie") this.restrictions.add("private");
    }
    let maxAge: number | null = null;
    let sMaxAge: number | null = null;
    for (const part of directives.split(",")) {
      const eq = part.indexOf("=");
      const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      if (RESTRICTION_SET.has(name)) this.restrictions.add(name);
      else if (name === "max-age") maxAge = deltaSeconds(part.slice(eq + 1));
      else if (name === "s-maxage") sMaxAge = deltaSeconds(part.slice(eq + 1));
    }
    const own = maxAge ?? (expires === null ? null : expiresIn(expires, date, now));
    const shared = sMaxAge ?? own;
    if (sMaxAge !== null) this.anySMaxAge = true;
    if (own !== null) this.ownSeconds = Math.min(this.ownSeconds ?? Infinity, remaining(own, age));
    if (shared !== null) {
      this.sharedSeconds = Math.min(this.sharedSeconds ?? Infinity, remaining(shared, age));
    }
  }

  /** A part failed: the answer is a degraded one, for no cache to keep. */
  addFailure(): void {
    this.restrictions.add("no-store");
  }

  /** The merged answer's `Cache-Control` and `Vary`, when the parts call for them. */
  fields(): [string, string][] {
    const directives = RESTRICTIONS.filter((d) => this.restrictions.has(d));
    if (this.ownSeconds !== null) directives.push(`max-age=${this.ownSeconds}`);
    if (this.anySMaxAge) directives.push(`s-maxage=${this.sharedSeconds}`);
    const fields: [string, string][] = [];
    if (directives.length) fields.push(["cache-control", directives.join(", ")]);
    if (this.vary.size) {
      fields.push(["vary", this.vary.has("*") ? "*" : [...this.vary].join(", ")]);
    }
    return fields;
  }

  private addVary(value: string): void {
    for (const v of value.split(",")) {
      const name = v.trim().toLowerCase();
      if (name !== "" && !this.unseen.has(name)) this.vary.add(name);
    }
  }
}

/** Seconds until an `Expires` time, against the answer's `Date`; an invalid one is already past. */
function expiresIn(expires: string, date: string | null, now: number): number {
  const at = Date.parse(expires);
  if (Number.isNaN(at)) return 0;
  const sent = Date.parse(date ?? "");
  return Math.max(0, Math.floor((at - (Number.isNaN(sent) ? now : sent)) / 1000));
}

function remaining(lifetime: number, age: number): number {
  return Math.max(0, lifetime - age);
}
