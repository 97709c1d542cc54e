/**
 * JSON nested past `MAX_JSON_DEPTH`, through a real listener: a request body is
 * refused (400), an upstream answer on a route with field rules is refused
 * rather than passed with the rules unapplied (502), an aggregation call fails
 * as a call that did not answer JSON, and a body at the limit is edited as any.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../../lib/transform/exact_json.ts";

/** `{"secret":1,"x":[[...]]}`: `depth` levels in all, a field the rules remove at the top. */
const nested = (depth: number) =>
  `{"secret":1,"x":${"[".repeat(depth - 1)}1.10${"]".repeat(depth - 1)}}`;

Deno.test("nestsDeeperThan() counts arrays and objects, not brackets in strings", () => {
  assertEquals(nestsDeeperThan("[[1]]", 2), false);
  assertEquals(nestsDeeperThan("[[[1]]]", 2), true);
  assertEquals(nestsDeeperThan(`{"a":"[[[[","b":[1]}`, 2), false);
  assertEquals(nestsDeeperThan(`["\\"[[[[", [1]]`, 2), false);
  assertEquals(nestsDeeperThan(`["\\\\", [[1]]]`, 2), true);
  assertEquals(nestsDeeperThan(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH), false);
  assertEquals(nestsDeeperThan(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true);
});

Deno.test("JSON rules: a body nested past the limit is refused both ways, one at the limit edited", async () => {
  const deep = nested(100_000);
  const up = startUpstream(async (req, r) => {
    const body = await req.text();
    if (r.url.startsWith("/echo")) {
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    return new Response(r.url === "/deep" ? deep : nested(MAX_JSON_DEPTH), {
      headers: { "content-type": "application/json" },
    });
  });
  const g = await startGateway(baseConfig(`
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: rules
    match: { path: / }
    upstream: a
    transform:
      request: { json: { remove: [secret] } }
      response: { json: { remove: [secret] } }
  - name: agg
    match: { path: /agg }
    aggregate:
      on_error: partial
      calls:
        - { key: deep, upstream: a, path: /deep }
        - { key: ok, upstream: a, path: /ok }
`));
  const send = async (path: string, body?: string) => {
    const res = await fetch(`${g.url()}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, text: await res.text() };
  };
  try {
    const refused = await send("/echo", deep);
    assertEquals(refused.status, 400);
    assertEquals(
      JSON.parse(refused.text).error.message,
      `The request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
    );
    const answer = await send("/deep");
    assertEquals([answer.status, JSON.parse(answer.text).error.code], [502, "upstream_error"]);
    assertEquals(answer.text.includes("secret"), false);

    // At the limit: edited, numbers as written.
    const atLimit = await send("/echo", nested(MAX_JSON_DEPTH));
    assertEquals(atLimit.status, 200);
    assertEquals(atLimit.text, nested(MAX_JSON_DEPTH).replace(`"secret":1,`, ""));

    const agg = JSON.parse((await send("/agg")).text);
    assertEquals(agg.deep, undefined);
    assertEquals(agg.errors.deep.code, "upstream_error");
    assertEquals(
      agg.errors.deep.message,
      `The answer nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
    );
    assertEquals(JSON.stringify(agg.ok).length > MAX_JSON_DEPTH, true);
  } finally {
    await g.close();
    await up.close();
  }
});
