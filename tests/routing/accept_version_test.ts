/** The API version an `Accept` field names in a vendor media type (`versioning.sources: [accept]`). */
import { assertEquals } from "../helpers/assert.ts";
import { acceptedVersion } from "../../lib/router/version.ts";

Deno.test("acceptedVersion() reads the first .vN of the first vendor media type that has one", () => {
  const cases: [string, string | null][] = [
    ["application/vnd.acme.v2+json", "2"],
    ["Application/VND.acme.V3", "3"],
    ["application/vnd.acme.v2.1+json; q=0.9", "2.1"],
    ["text/html, application/vnd.acme.v4+json;q=0.5", "4"],
    ["application/vnd.acme+json, application/vnd.acme.v5+json", "5"],
    ["application/vnd.a.v1.b.v2", "1"],
    // A version in the parameters or outside a vendor type is not one.
    ["application/json; v=2", null],
    ["application/vnd.acme+json; version=.v2", null],
    ["text/vnd.acme.v2", null],
    ["application/vnd.v2", null],
    ["", null],
  ];
  for (const [accept, version] of cases) assertEquals(acceptedVersion(accept), version, accept);
});

Deno.test("acceptedVersion() reads a field of repeated vendor prefixes once", () => {
  // Each repetition is one media range without a version; the last has one.
  const long = "application/vnd.x,".repeat(3_000) + "application/vnd.acme.v7+json";
  assertEquals(acceptedVersion(long), "7");
  const glued = "application/vnd.".repeat(4_000);
  assertEquals(acceptedVersion(glued), null);
});
