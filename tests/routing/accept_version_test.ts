/** The API version an `Accept` field names in a vendor media type (`versioning.sources: [accept]`). */
import { assertEquals } from "../helpers/assert.ts";
import { acceptedVersion } from "../../lib/router/version.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";

Deno.test("acceptedVersion() reads the first .vN of the first vendor media type that has one", () => {
  const cases: [string, string | null][] = [
    ["application/vnd.acme.v2+json", "2"],
    ["Application/VND.acme.V3", "3"],
    ["application/vnd.acme.v2.1+json; q=0.9", "2.1"],
    ["text/html, application/vnd.acme.v4+json;q=0.5", "4"],
    ["application/vnd.acme+json, application/vnd.acme.v5+json", "5"],
    ["application/vnd.a.v1.b.v2", "1"],
    // A weight of 0 refuses the type (RFC 9110 §12.4.2): the next one decides.
    ["application/vnd.acme.v2+json;q=0, application/vnd.acme.v1+json", "1"],
    ["application/vnd.acme.v2+json; Q = 0.000 ; x=1", null],
    ["application/vnd.acme.v2+json;q=0.001", "2"],
    ["application/vnd.acme.v2+json;q=0.5;x=0", "2"],
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

Deno.test("versioning: a vendor type the client refuses with q=0 names no version", async () => {
  const v1 = startUpstream(() => new Response("v1"));
  const v2 = startUpstream(() => new Response("v2"));
  const g = await startGateway(baseConfig(`
upstreams:
  v1: { targets: [ { url: "${v1.url}" } ] }
  v2: { targets: [ { url: "${v2.url}" } ] }
versioning: { sources: [accept], default: "1" }
routes:
  - { name: users-v1, match: { path: /users, version: 1 }, upstream: v1 }
  - { name: users-v2, match: { path: /users, version: 2 }, upstream: v2 }
`));
  const served = async (accept: string) =>
    await (await fetch(`${g.url()}/users`, { headers: { accept } })).text();
  try {
    assertEquals(await served("application/vnd.acme.v2+json"), "v2");
    // "Anything but v2": the default, not the version refused.
    assertEquals(await served("application/vnd.acme.v2+json;q=0, application/json"), "v1");
  } finally {
    await g.close();
    await v1.close();
    await v2.close();
  }
});
