/** The small pure parts of auth, table-driven. */
import { assertEquals } from "../helpers/assert.ts";
import { bearerToken, credentialQueryParams, withoutParam } from "../../lib/auth/credentials.ts";
import { challengeFor } from "../../lib/auth/provider.ts";
import { scopesOf } from "../../lib/auth/identity.ts";
import { BoundedMap } from "../../lib/auth/bounded_map.ts";
import { keyDigest, malformedHashSpec, specDigest } from "../../lib/auth/key_hash.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { queryValues } from "../../lib/core/query_params.ts";

Deno.test("withoutParam() removes one parameter and leaves the others byte for byte", () => {
  const cases: [string, string, string][] = [
    ["/a?key=1", "key", "/a"],
    ["/a?x=%20y&key=1&z=a+b", "key", "/a?x=%20y&z=a+b"],
    ["/a?key=1&key=2&keyx=3", "key", "/a?keyx=3"],
    ["/a?k%65y=1&b", "key", "/a?b"],
    ["/a?%zz=1&key=2", "key", "/a?%zz=1"],
    ["/a", "key", "/a"],
    ["/a?", "key", "/a?"],
    ["/a?&&key=1&&b&key", "key", "/a?&&&b"],
    ["/a?key=1&", "key", "/a?"],
    ["/a?k+y=1&k%2By=2", "k y", "/a?k%2By=2"],
    // Read as the reader reads it: a `%` that starts no escape is the name's own.
    ["/a?100%=1&100%25=2&x", "100%", "/a?x"],
  ];
  for (const [input, name, want] of cases) assertEquals(withoutParam(input, name), want, input);
});

Deno.test("withoutParam() removes exactly the pairs the query reader gives the name", () => {
  const pieces = ["key", "k%65y", "KEY", "k", "=", "&", "1", "+", "%", "%zz", "%26", "x=", "é"];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 3000; i++) {
    let query = "?";
    for (let n = Math.floor(next() * 10); n > 0; n--) {
      query += pieces[Math.floor(next() * pieces.length)];
    }
    const out = withoutParam(`/a${query}`, "key");
    const rest = out.slice(2);
    assertEquals(queryValues(rest, "key"), [], query);
    for (const other of ["k", "KEY", "x", ""]) {
      assertEquals(queryValues(rest, other), queryValues(query, other), `${query} ${other}`);
    }
  }
});

Deno.test("bearerToken() reads the Bearer scheme case-insensitively and nothing else", () => {
  const cases: [string, string | null][] = [
    ["Bearer abc", "abc"],
    ["bearer  abc ", "abc"],
    ["BEARER abc", "abc"],
    ["Basic abc", null],
    ["Bearer", null],
  ];
  for (const [input, want] of cases) assertEquals(bearerToken(input), want, input);
});

Deno.test("challengeFor() renders RFC 6750 challenges", () => {
  const base = 'Bearer realm="api"';
  assertEquals(challengeFor(base, "missing_credentials"), base);
  assertEquals(
    challengeFor(base, "token_expired"),
    'Bearer realm="api", error="invalid_token", error_description="The token has expired"',
  );
  assertEquals(
    challengeFor(base, "insufficient_scope", ["a", "b"]),
    'Bearer realm="api", error="insufficient_scope", ' +
      'error_description="The credentials lack a required scope", scope="a b"',
  );
  assertEquals(
    challengeFor(base, "ambiguous_credentials"),
    'Bearer realm="api", error="invalid_request", ' +
      'error_description="The request carries conflicting credentials"',
  );
});

Deno.test("scopesOf() reads scope, then scp, or a configured claim", () => {
  assertEquals([...scopesOf({ scope: "a  b" })], ["a", "b"]);
  assertEquals([...scopesOf({ scp: ["a", 1, "c"] })], ["a", "c"]);
  assertEquals([...scopesOf({ scp: "x y" })], ["x", "y"]);
  assertEquals([...scopesOf({ roles: ["r"], scope: "a" }, "roles")], ["r"]);
  assertEquals(scopesOf({}).size, 0);
});

Deno.test("BoundedMap drops the oldest entry past its capacity", () => {
  const m = new BoundedMap<string, number>(2);
  m.set("a", 1).set("b", 2).set("a", 3).set("c", 4);
  assertEquals([...m.entries()], [["b", 2], ["c", 4]]);
  const off = new BoundedMap<string, number>(0);
  off.set("a", 1);
  assertEquals(off.size, 0);
});

Deno.test("key specs: sha256: digests as given, anything else hashed", () => {
  const digest = keyDigest("k");
  assertEquals(digest, "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a");
  assertEquals(specDigest(`sha256:${digest.toUpperCase()}`), digest);
  assertEquals(specDigest("k"), digest);
  assertEquals(malformedHashSpec("sha256:12"), true);
  assertEquals(malformedHashSpec(`sha256:${digest}`), false);
});

Deno.test("credentialQueryParams() lists every query parameter that carries credentials", async () => {
  const { config } = await parseConfig(
    `auth:
  a: { kind: api_key, query: api_key }
  b: { kind: jwt, secret: "${"s".repeat(32)}", algorithms: [HS256], query: access_token }
  c: { kind: api_key }
`,
    "/tmp/g.yaml",
    () => undefined,
  );
  assertEquals(credentialQueryParams(config), ["api_key", "access_token"]);
});
