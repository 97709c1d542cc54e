/** NameSet: a set of lower-case field names looked up by length first. */
import { assertEquals } from "../helpers/assert.ts";
import { NameSet } from "../../lib/core/name_set.ts";

Deno.test("NameSet: members are found, others of the same or another length are not", () => {
  const set = new NameSet(["te", "trailer", "upgrade", "connection", "keep-alive", "te"]);
  for (const name of ["te", "trailer", "upgrade", "connection", "keep-alive"]) {
    assertEquals(set.has(name), true, name);
  }
  // Same lengths as members, other names; other lengths; case matters (names are lower-case).
  for (const name of ["tx", "trailex", "content-ty", "", "date", "Connection", "connection "]) {
    assertEquals(set.has(name), false, name);
  }
  // A name sliced from a larger string is compared by value.
  assertEquals(set.has("x-upgrade".slice(2)), true);
});

Deno.test("NameSet: iterates its members once each, so other sets can be built from it", () => {
  const base = new NameSet(["te", "upgrade", "te"]);
  assertEquals([...base].sort(), ["te", "upgrade"]);
  const wider = new NameSet([...base, "host"]);
  assertEquals(["te", "upgrade", "host"].map((n) => wider.has(n)), [true, true, true]);
});
