import { assertEquals } from "../helpers/assert.ts";
import { normalisePath } from "../../lib/security/path.ts";

const ACCEPTED: [string, string][] = [
  ["/", "/"],
  ["/api/users", "/api/users"],
  ["/api/users/", "/api/users/"],
  ["/a/./b", "/a/b"],
  ["/a/b/../c", "/a/c"],
  ["/a/b/..", "/a/"],
  ["/a/b/.", "/a/b/"],
  ["/a/%2e%2e/b", "/b"],
  ["/a/%2E%2e/b", "/b"],
  ["/a/.%2e/b", "/b"],
  ["/%7Euser", "/~user"],
  ["/%41%42c", "/ABc"],
  ["/a%3cb", "/a%3Cb"],
  ["/a//b", "/a/b"],
  ["//a///b//", "/a/b/"],
  ["/caf\u00e9", "/caf%C3%A9"],
  ["/\uff0e\uff0e/admin", "/%EF%BC%8E%EF%BC%8E/admin"],
  ["/a\uff0fb", "/a%EF%BC%8Fb"],
  ["/%c0%af", "/%C0%AF"],
  ["/%252e%252e/x", "/%252e%252e/x"],
  ["/emoji/\u{1f600}", "/emoji/%F0%9F%98%80"],
  ["/a b", "/a%20b"],
  ['/a"<>{}|^`[]', "/a%22%3C%3E%7B%7D%7C%5E%60%5B%5D"],
  ["/file.json", "/file.json"],
  ["/x:y@z!$&'()*+,=", "/x:y@z!$&'()*+,="],
];

const REFUSED: [string, string][] = [
  ["", "path must start with /"],
  ["a/b", "path must start with /"],
  ["/..", "path climbs above the root"],
  ["/../a", "path climbs above the root"],
  ["/a/../../b", "path climbs above the root"],
  ["/%2e%2e/a", "path climbs above the root"],
  ["/a%2fb", "encoded slash or backslash"],
  ["/a%2Fb", "encoded slash or backslash"],
  ["/a%5cb", "encoded slash or backslash"],
  ["/a\\b", "backslash in path"],
  ["/a%00", "encoded control character"],
  ["/a%0d%0aX-Injected:1", "encoded control character"],
  ["/a\u0000b", "control character in path"],
  ["/a%", "invalid percent-encoding"],
  ["/a%g1", "invalid percent-encoding"],
  ["/a%1", "invalid percent-encoding"],
  ["/a#b", "fragment in request target"],
  ["/a/..#/b", "fragment in request target"],
  ["/a/..;/b", "dot segment with parameters"],
  ["/a/.;/b", "dot segment with parameters"],
  ["/a/%2e%2e;x/b", "dot segment with parameters"],
  ["/a;b", "path segment with ;parameters"],
  ["/api/admin;jsessionid=1/x", "path segment with ;parameters"],
  ["/a/b;", "path segment with ;parameters"],
];

Deno.test("normalisePath() accepts and normalises", () => {
  for (const [raw, want] of ACCEPTED) {
    assertEquals(normalisePath(raw), { ok: true, path: want }, raw);
  }
});

Deno.test("normalisePath() refuses what could confuse routing or the upstream", () => {
  for (const [raw, reason] of REFUSED) {
    assertEquals(normalisePath(raw), { ok: false, reason }, JSON.stringify(raw));
  }
});

Deno.test("normalisePath() keeps ;parameters when they are allowed, and still refuses ..;", () => {
  assertEquals(normalisePath("/a;b", true, true), { ok: true, path: "/a;b" });
  assertEquals(normalisePath("/a/b;c/d", true, true), { ok: true, path: "/a/b;c/d" });
  assertEquals(normalisePath("/a/..;/b", true, true), {
    ok: false,
    reason: "dot segment with parameters",
  });
});

Deno.test("normalisePath() keeps // when merging is off", () => {
  assertEquals(normalisePath("/a//b", false), { ok: true, path: "/a//b" });
  assertEquals(normalisePath("/a//../b", false), { ok: true, path: "/a/b" });
});

Deno.test("normalisePath() is idempotent on what it accepts", () => {
  for (const [raw] of ACCEPTED) {
    const once = normalisePath(raw);
    if (!once.ok) throw new Error(raw);
    assertEquals(normalisePath(once.path), once, raw);
  }
});
