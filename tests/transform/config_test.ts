/** Transform settings are checked at load: mistakes name the file, line, key and what was expected. */
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";

const cases: [string, string, RegExp][] = [
  [
    "an unknown template variable",
    `{ request: { headers: { set: { X-Who: "\${consumer.name}" } } } }`,
    /gateway\.yaml:\d+:\d+: routes\[0\]\.transform\.request\.headers\.set\.X-Who: unknown template variable \$\{consumer\.name\}/,
  ],
  [
    "an unclosed template",
    `{ response: { headers: { add: { X-A: "\${claim.sub" } } } }`,
    /transform\.response\.headers\.add\.X-A: unclosed \$\{/,
  ],
  [
    "a framing header",
    `{ request: { headers: { remove: [Content-Length] } } }`,
    /transform\.request\.headers\.remove\[0\]: expected a header the gateway does not own \(Content-Length frames/,
  ],
  [
    "a field path ending in []",
    `{ response: { json: { remove: ["items[]"] } } }`,
    /transform\.response\.json\.remove\[0\]: expected a dotted field path/,
  ],
  [
    "an empty path segment",
    `{ response: { json: { keep: ["a..b"] } } }`,
    /transform\.response\.json\.keep\[0\]: expected a dotted field path/,
  ],
  [
    "an unknown oversize policy",
    `{ response: { on_oversize: truncate } }`,
    /transform\.response\.on_oversize/,
  ],
];

for (const [name, transform, expected] of cases) {
  Deno.test(`transform config: ${name} is refused at load`, async () => {
    await assertRejects(
      () =>
        startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - { name: r, match: { path: / }, upstream: a, transform: ${transform} }
`)),
      (e: Error) => expected.test(e.message),
    );
  });
}

Deno.test("transform config: ${request_id} is a request variable, not an environment variable", async () => {
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(`
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: r
    match: { path: / }
    upstream: a
    transform: { request: { headers: { set: { X-Trace: "gw-\${request_id}", X-Env: "\${REGION}" } } } }
`),
    { env: { REGION: "eu-1" } },
  );
  try {
    const res = await fetch(`${g.url()}/`, { headers: { "x-request-id": "rid-1" } });
    const seen = (await res.json()).headers;
    assertEquals(seen["x-trace"], "gw-rid-1");
    assertEquals(seen["x-env"], "eu-1");
  } finally {
    await g.close();
    await up.close();
  }
});
