import { assertEquals } from "../helpers/assert.ts";
import { compileJsonRules, type JsonRules } from "../../lib/transform/json_rules.ts";

const cases: { name: string; rules: JsonRules; input: unknown; output: unknown }[] = [
  {
    name: "removes a top-level and a nested field",
    rules: { remove: ["internal_id", "user.password"] },
    input: { internal_id: 1, id: 2, user: { name: "ada", password: "x" } },
    output: { id: 2, user: { name: "ada" } },
  },
  {
    name: "removes a field inside every array item, nested twice",
    rules: { remove: ["items[].internal_id", "items[].parts[].cost"] },
    input: {
      items: [
        { id: 1, internal_id: "a", parts: [{ n: 1, cost: 3 }, { n: 2, cost: 4 }] },
        { id: 2, internal_id: "b" },
        "not-an-object",
      ],
    },
    output: {
      items: [{ id: 1, parts: [{ n: 1 }, { n: 2 }] }, { id: 2 }, "not-an-object"],
    },
  },
  {
    name: "reaches the items of a top-level array",
    rules: { remove: ["[].secret"] },
    input: [{ id: 1, secret: "s" }, { id: 2 }],
    output: [{ id: 1 }, { id: 2 }],
  },
  {
    name: "keeps only the allowlisted fields, whole subtrees included",
    rules: { keep: ["id", "items[].id", "meta"] },
    input: { id: 1, drop: true, items: [{ id: 1, x: 1 }, { id: 2, y: 2 }], meta: { a: 1, b: 2 } },
    output: { id: 1, items: [{ id: 1 }, { id: 2 }], meta: { a: 1, b: 2 } },
  },
  {
    name: "renames in place, keeping key order, at any depth",
    rules: { rename: { "user_id": "userId", "items[].sku_code": "sku" } },
    input: { a: 1, user_id: 7, z: 2, items: [{ sku_code: "k", q: 1 }] },
    output: { a: 1, userId: 7, z: 2, items: [{ sku: "k", q: 1 }] },
  },
  {
    name: "applies keep, then remove, then rename, all on the arriving names",
    rules: { keep: ["id", "user"], remove: ["user.password"], rename: { "user.name": "login" } },
    input: { id: 1, other: 2, user: { name: "ada", password: "p", mail: "m" } },
    output: { id: 1, user: { login: "ada", mail: "m" } },
  },
  {
    name: "leaves absent paths and scalars alone",
    rules: { remove: ["a.b.c"], rename: { "x.y": "z" } },
    input: { a: 5, x: null, keep: [1, 2] },
    output: { a: 5, x: null, keep: [1, 2] },
  },
  {
    name: "treats a __proto__ key in the body as an ordinary field",
    rules: { rename: { id: "key" } },
    input: JSON.parse('{"id":1,"__proto__":{"polluted":true}}'),
    output: JSON.parse('{"key":1,"__proto__":{"polluted":true}}'),
  },
];

for (const c of cases) {
  Deno.test(`compileJsonRules() ${c.name}`, () => {
    const t = compileJsonRules(c.rules)!;
    const out = t(structuredClone(c.input));
    assertEquals(JSON.stringify(out), JSON.stringify(c.output));
    assertEquals(({} as Record<string, unknown>).polluted, undefined);
  });
}

Deno.test("compileJsonRules() compiles empty rules to nothing", () => {
  assertEquals(compileJsonRules({}), null);
  assertEquals(compileJsonRules({ remove: [], keep: [] }), null);
});
