/** The built-in rule set and the linear-time matcher, without a server. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { BUILTIN_RULES } from "../../lib/security/waf/builtin.ts";
import {
  compileLinearRegex,
  linearRegexError,
  loadLinearRegex,
} from "../../lib/core/linear_regex.ts";
import { compileValueMatcher } from "../../lib/security/waf/matcher.ts";
import { decodeForInspection, decodeJsonEscapes } from "../../lib/security/waf/decode.ts";

await loadLinearRegex();
const compiled = BUILTIN_RULES.map((r) => ({ id: r.id, re: compileLinearRegex(r.pattern, true) }));
const hits = (s: string) => compiled.filter((c) => c.re.test(s)).map((c) => c.id);

const ATTACKS: [string, string][] = [
  ["1 UNION SELECT password FROM users", "sqli-union-select"],
  ["1 union/**/all/**/select 1,2", "sqli-union-select"],
  ["x' OR '1'='1", "sqli-tautology"],
  ["5 or 1=1", "sqli-tautology"],
  ['admin" or "a"="a', "sqli-tautology"],
  ["admin'--", "sqli-terminator"],
  ["x'; DROP TABLE users", "sqli-terminator"],
  ["1; drop table users", "sqli-stacked-statement"],
  ["1 AND SLEEP(5)", "sqli-functions"],
  ["1; WAITFOR DELAY '0:0:5'", "sqli-functions"],
  ["select * from information_schema.tables", "sqli-functions"],
  ["<script>alert(1)</script>", "xss-script-tag"],
  ["< ScRiPt src=//x>", "xss-script-tag"],
  ['<img src=x onerror="alert(1)">', "xss-event-handler"],
  ["<svg/onload=alert(1)>", "xss-event-handler"],
  ["javascript:alert(1)", "xss-script-uri"],
  ["data:text/html;base64,PHNjcmlwdD4=", "xss-script-uri"],
  ["<iframe src=//evil>", "xss-active-tag"],
  ["file=../../etc/passwd", "traversal-dot-segments"],
  ["file=..\\..\\windows\\win.ini", "traversal-dot-segments"],
  ["file=%2e%2e%2fsecret", "traversal-dot-segments"],
  ["/etc/shadow", "traversal-system-files"],
  ["/proc/self/environ", "traversal-system-files"],
  ["report.pdf\0.png", "traversal-nul-byte"],
];

const BENIGN = [
  "/api/users/42",
  "name=O'Brien&city=Zurich",
  "q=rock and roll",
  "q=union station&select=all",
  "order=created_at desc",
  '{"title":"Version 2 and beyond","color":"#ff0000","tags":["a","b"]}',
  '{"glob":"/*","note":"it\'s fine"}',
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
  "session=abc123; theme=dark",
  "https://app.example.com/page?x=1",
  "a <b>bold</b> statement & more",
  "the script was long; we dropped it",
  "v1.2.3...v1.2.4",
];

Deno.test("built-in rules catch the attack shapes they document", () => {
  for (const [input, id] of ATTACKS) {
    assertOk(
      hits(input).includes(id),
      `${id} should match ${JSON.stringify(input)}: ${hits(input)}`,
    );
  }
});

Deno.test("built-in rules let ordinary values through", () => {
  for (const input of BENIGN) assertEquals(hits(input), [], input);
});

Deno.test("patterns run in linear time, also those that backtrack catastrophically elsewhere", () => {
  const evil = compileLinearRegex("(a+)+$");
  const input = "a".repeat(50_000) + "!";
  // About 50 ms here; backtracking would take longer than anyone waits. The 10 s bounds
  // leave a stalled machine room and still tell the two apart.
  const t = performance.now();
  assertEquals(evil.test(input), false);
  assertOk(performance.now() - t < 10_000);
  const all = compileLinearRegex(BUILTIN_RULES.map((r) => `(?:${r.pattern})`).join("|"), true);
  const worst = "'".repeat(20_000) + " or ".repeat(5_000) + "<a ".repeat(5_000);
  const t2 = performance.now();
  all.test(worst);
  assertOk(performance.now() - t2 < 10_000, `${performance.now() - t2} ms`);
});

Deno.test("linearRegexError() refuses what needs backtracking and explains it", async () => {
  assertEquals(await linearRegexError("^/admin(/|$)"), null);
  assertOk((await linearRegexError("(a)\\1"))?.includes("\\1"));
  assertOk(await linearRegexError("(?=x)y") !== null);
  assertOk(await linearRegexError("(unclosed") !== null);
});

Deno.test("value matchers: regex, equals, prefix, contains, present, case folding", () => {
  const t = (m: Parameters<typeof compileValueMatcher>[0], v: string | null) =>
    compileValueMatcher(m)(v);
  assertEquals(t("^/adm", "/admin"), true);
  assertEquals(t("^/adm", null), false);
  assertEquals(t({ regex: "SQLMAP", case_insensitive: true }, "sqlmap/1.7"), true);
  assertEquals(t({ equals: "GET", case_insensitive: false }, "get"), false);
  assertEquals(t({ equals: "GET", case_insensitive: true }, "get"), true);
  assertEquals(t({ prefix: "/internal", case_insensitive: false }, "/internal/x"), true);
  assertEquals(t({ contains: "evil", case_insensitive: true }, "so EVIL"), true);
  assertEquals(t({ present: true }, ""), true);
  assertEquals(t({ present: false }, null), true);
});

Deno.test("decodeForInspection() decodes once, tolerates malformed escapes", () => {
  assertEquals(decodeForInspection("a%20b+c", true), "a b c");
  assertEquals(decodeForInspection("a+b", false), "a+b");
  assertEquals(decodeForInspection("%3Cscript%3E%zz", false), "<script>%zz");
  assertEquals(decodeForInspection("%252e", false), "%2e");
});

Deno.test("decodeJsonEscapes() decodes JSON string escapes once, keeps malformed ones", () => {
  assertEquals(decodeJsonEscapes(String.raw`wait...\n\"x\"`), 'wait...\n"x"');
  assertEquals(decodeJsonEscapes(String.raw`..\\..\\win.ini`), String.raw`..\..\win.ini`);
  assertEquals(decodeJsonEscapes(String.raw`\u003cscript\u003E \/`), "<script> /");
  assertEquals(decodeJsonEscapes(String.raw`\\n \x \u12`), String.raw`\n \x \u12`);
});
