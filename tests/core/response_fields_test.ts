import { assertEquals, assertOk } from "../helpers/assert.ts";
import { ParsedResponse, responseFields, unreadFields } from "../../lib/core/parsed_response.ts";

type Op = [string, string, string?];

// The same edits through the list and through Headers: the results and the refusals must agree.
const OPS: Op[] = [
  ["set", "X-Request-Id", "abc"],
  ["set", "server", "  padded\t"],
  ["append", "vary", "origin"],
  ["append", "Vary", "accept"],
  ["set", "vary", "*"],
  ["delete", "X-Powered-By"],
  ["append", "set-cookie", "a=1"],
  ["append", "set-cookie", "b=2"],
  ["set", "bad name", "v"],
  ["set", "x-bad", "a\r\nb"],
  ["set", "x-wide", "\u20ac"],
  ["set", "x-nul", "a\0b"],
  ["set", "x-latin1", "caf\xe9"],
  ["delete", "server"],
];

Deno.test("responseFields edits a parsed response's list as Headers would, refusals included", () => {
  const upstream: [string, string][] = [
    ["server", "nginx"],
    ["x-powered-by", "php"],
    ["vary", "cookie"],
    ["content-type", "text/plain"],
  ];
  const parsed = new ParsedResponse(
    new TextEncoder().encode("ok"),
    { status: 200 },
    upstream.map(([n, v]) => [n, v]),
  );
  const plain = new Response("ok", { headers: upstream });
  const list = responseFields(parsed);
  for (const [op, name, value] of OPS) {
    const outcome = (f: () => void) => {
      try {
        f();
        return "ok";
      } catch (e) {
        return (e as Error).name;
      }
    };
    const viaList = outcome(() =>
      value === undefined ? list.delete(name) : list[op as "set"](name, value)
    );
    const viaHeaders = outcome(() =>
      value === undefined ? plain.headers.delete(name) : plain.headers[op as "set"](name, value)
    );
    assertEquals(viaList, viaHeaders, `${op} ${name}`);
    for (const probe of ["x-request-id", "server", "vary", "set-cookie", "x-latin1", "absent"]) {
      assertEquals(list.get(probe), plain.headers.get(probe), `${probe} after ${op} ${name}`);
      assertEquals(list.has(probe), plain.headers.has(probe), `${probe} after ${op} ${name}`);
    }
  }
  assertOk(unreadFields(parsed) !== null, "edits keep the list unread");
  // Reading headers fills them from the list, once; from then on edits go to Headers.
  assertEquals([...parsed.headers], [...plain.headers]);
  assertEquals(unreadFields(parsed), null);
  assertOk(responseFields(parsed) === parsed.headers);
});

Deno.test("responseFields of any other Response is its Headers", () => {
  const res = new Response(null, { headers: { a: "1" } });
  assertOk(responseFields(res) === res.headers);
  assertEquals(unreadFields(res), null);
});
