import { assertEquals } from "../helpers/assert.ts";
import { freshness } from "../../lib/cache/freshness.ts";

const rules = { ttlMs: 60_000, statuses: new Set([200, 404]), vary: new Set(["accept-language"]) };
const NOW = Date.parse("Tue, 01 Jul 2025 12:00:00 GMT");

const cases: [string, number, Record<string, string>, number | null][] = [
  ["no directives: the route's TTL", 200, {}, 60_000],
  ["max-age shortens", 200, { "cache-control": "public, max-age=10" }, 10_000],
  ["max-age never lengthens", 200, { "cache-control": "max-age=3600" }, 60_000],
  ["s-maxage wins over max-age", 200, { "cache-control": "max-age=5, s-maxage=20" }, 20_000],
  ["quoted values", 200, { "cache-control": 'max-age="7"' }, 7_000],
  ["Age is subtracted", 200, { "cache-control": "max-age=30", "age": "10" }, 20_000],
  ["older than its max-age", 200, { "cache-control": "max-age=30", "age": "31" }, null],
  ["Expires against Date", 200, {
    "expires": "Tue, 01 Jul 2025 12:00:30 GMT",
    "date": "Tue, 01 Jul 2025 12:00:00 GMT",
  }, 30_000],
  ["invalid Expires is expired", 200, { "expires": "0" }, null],
  ["max-age overrides Expires", 200, { "cache-control": "max-age=5", "expires": "0" }, 5_000],
  ["no-store", 200, { "cache-control": "no-store" }, null],
  ["private", 200, { "cache-control": "PRIVATE" }, null],
  ["qualified private", 200, { "cache-control": 'private="set-cookie", max-age=60' }, null],
  ["no-cache", 200, { "cache-control": "no-cache" }, null],
  ["invalid max-age", 200, { "cache-control": "max-age=soon" }, null],
  ["Set-Cookie", 200, { "set-cookie": "a=b" }, null],
  ["Vary on a keyed header", 200, { "vary": "Accept-Language" }, 60_000],
  ["Vary on another header", 200, { "vary": "Accept-Language, Cookie" }, null],
  ["Vary *", 200, { "vary": "*" }, null],
  ["a listed status", 404, {}, 60_000],
  ["a status not listed", 500, { "cache-control": "max-age=60" }, null],
];

for (const [name, status, headers, lifetime] of cases) {
  Deno.test(`freshness(): ${name}`, () => {
    const f = freshness(new Headers(headers), status, rules, NOW);
    assertEquals(f === null ? null : f.lifetimeMs, lifetime);
  });
}

const staleCases: [string, string, boolean][] = [
  ["max-age alone", "max-age=10", true],
  ["must-revalidate", "max-age=10, must-revalidate", false],
  ["proxy-revalidate", "max-age=10, Proxy-Revalidate", false],
  ["s-maxage", "s-maxage=10", false],
];

for (const [name, cacheControl, allowed] of staleCases) {
  Deno.test(`freshness(): may be served stale: ${name}`, () => {
    const f = freshness(new Headers({ "cache-control": cacheControl }), 200, rules, NOW);
    assertEquals(f?.staleAllowed, allowed);
  });
}
