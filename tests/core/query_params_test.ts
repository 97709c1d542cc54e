/**
 * QueryParams reads a parameter as URLSearchParams does: the same values for
 * every name, in the same order, on queries built from the pieces that decode
 * in odd ways (escapes of the name, malformed and partial escapes, `+`,
 * invalid UTF-8, a BOM, raw non-ASCII, lone surrogates).
 */
import { assertEquals } from "../helpers/assert.ts";
import { QueryParams, queryValues } from "../../lib/core/query_params.ts";
import { seededRandom as rng } from "../helpers/seeded_random.ts";

const PIECES = [
  "a",
  "b",
  "=",
  "&",
  "&&",
  "+",
  "%",
  "%2",
  "%zz",
  "%2B",
  "%20",
  "%3D",
  "%26",
  "%61",
  "%41",
  "api_key",
  "api%5Fkey",
  "api%5fkey",
  "API_KEY",
  "ap%69_key",
  "key",
  "é",
  "%C3%A9",
  "%c3",
  "%FF",
  "%EF%BB%BF",
  "\uD800",
  "😀",
  "%F0%9F%98%80",
  "%ED%A0%80",
  "?",
  "x=1",
  "a=2",
  " ",
];
const NAMES = [
  "a",
  "b",
  "A",
  "api_key",
  "key",
  "",
  " ",
  "a b",
  "+",
  "=",
  "&",
  "é",
  "😀",
  "\uFEFFa",
  "\uFFFD",
  "a\uFFFD",
  "%",
  "%2",
  "?",
  "x",
];

Deno.test("queryValues() gives every name the values URLSearchParams gives it", () => {
  const r = rng(0x9e37);
  for (let i = 0; i < 5000; i++) {
    let query = i % 3 === 0 ? "?" : "";
    const n = Math.floor(r() * 12);
    for (let k = 0; k < n; k++) query += PIECES[Math.floor(r() * PIECES.length)];
    const parsed = new URLSearchParams(query);
    for (const name of NAMES) {
      assertEquals(
        queryValues(query, name),
        parsed.getAll(name),
        `${JSON.stringify(query)} ${name}`,
      );
    }
  }
});

Deno.test("QueryParams: get() is the first value or null, getAll() every value", () => {
  const q = new QueryParams("?v=1&api%5Fkey=k1&v=2&empty=&bare&v=3+4%2B");
  assertEquals(q.get("v"), "1");
  assertEquals(q.getAll("v"), ["1", "2", "3 4+"]);
  assertEquals(q.get("api_key"), "k1");
  assertEquals([q.get("empty"), q.get("bare"), q.get("missing")], ["", "", null]);
  assertEquals(q.getAll("missing"), []);
  // Asked again, the same answer (read once).
  assertEquals(q.getAll("v"), ["1", "2", "3 4+"]);
  assertEquals(new QueryParams("").get("v"), null);
});
