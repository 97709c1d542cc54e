/** Routing through a real listener: match kinds, precedence, 404/405, rewrites, splits, versions. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { type Received, startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawGet } from "../helpers/raw.ts";
import { weightedChoice } from "../../lib/router/split.ts";

/** An upstream that answers with its own name and the path it received. */
function named(name: string): TestServer {
  return startUpstream((_req: Request, r: Received) => Response.json({ who: name, url: r.url }));
}

async function withGateway(
  upstreams: string[],
  routes: string,
  fn: (g: TestGateway, ups: Record<string, TestServer>) => Promise<void>,
  extra = "",
): Promise<void> {
  const ups: Record<string, TestServer> = {};
  for (const n of upstreams) ups[n] = named(n);
  const upYaml = upstreams.map((n) => `  ${n}: { targets: [ { url: "${ups[n]!.url}" } ] }`)
    .join("\n");
  const g = await startGateway(baseConfig(`upstreams:\n${upYaml}\n${extra}\nroutes:\n${routes}`));
  try {
    await fn(g, ups);
  } finally {
    await g.close();
    for (const u of Object.values(ups)) await u.close();
  }
}

async function who(
  g: TestGateway,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; who?: string; url?: string }> {
  const res = await fetch(`${g.url()}${path}`, init);
  const body = await res.json();
  return { status: res.status, who: body.who, url: body.url };
}

Deno.test("routing: prefix matches on segment boundaries, exact and regex kinds", async () => {
  await withGateway(
    ["a", "b", "c", "d"],
    `
  - { name: prefix, match: { path: /api/users }, upstream: a }
  - { name: exact, match: { path_exact: /api/users/me }, upstream: b }
  - { name: regex, match: { path_regex: "^/api/users/[0-9]+/orders$" }, upstream: c }
  - { name: root, match: { path: / }, upstream: d }
`,
    async (g) => {
      assertEquals((await who(g, "/api/users")).who, "a");
      assertEquals((await who(g, "/api/users/42")).who, "a");
      assertEquals((await who(g, "/api/usersX")).who, "d", "prefix stops at segment boundary");
      assertEquals((await who(g, "/api/users/me")).who, "b", "exact beats prefix");
      assertEquals((await who(g, "/api/users/me/x")).who, "a");
      assertEquals((await who(g, "/api/users/7/orders")).who, "c");
      assertEquals((await who(g, "/elsewhere")).who, "d");
    },
  );
});

Deno.test("routing: a regex route is tried on every path it can match", async () => {
  await withGateway(
    ["a", "b", "c"],
    `
  - { name: either, match: { path_regex: "^/alpha/x|^/beta/y" }, upstream: a }
  - { name: optional-slash, match: { path_regex: "^/api/?x" }, upstream: b }
  - { name: beta, match: { path: /beta/other }, upstream: c }
  - { name: apix, match: { path: /apix/other }, upstream: c }
`,
    async (g) => {
      assertEquals((await who(g, "/alpha/x")).who, "a");
      assertEquals((await who(g, "/beta/y")).who, "a", "the second alternative");
      assertEquals((await who(g, "/api/x")).who, "b");
      assertEquals((await who(g, "/apix")).who, "b", "the quantified slash may be absent");
      assertEquals((await who(g, "/apix/other")).who, "c");
    },
  );
});

Deno.test("routing: longest prefix wins regardless of order; priority overrides", async () => {
  await withGateway(
    ["a", "b", "c"],
    `
  - { name: short, match: { path: /api }, upstream: a }
  - { name: long, match: { path: /api/v1/things }, upstream: b }
  - { name: pinned, match: { path: /pinned }, upstream: a, priority: 10 }
  - { name: pinned-longer, match: { path: /pinned/deeper }, upstream: c }
`,
    async (g) => {
      assertEquals((await who(g, "/api/v1/things/1")).who, "b");
      assertEquals((await who(g, "/api/v1/other")).who, "a");
      assertEquals((await who(g, "/pinned/deeper/x")).who, "a", "priority beats specificity");
    },
  );
});

Deno.test("routing: methods, host (exact and wildcard), headers and query; ties by order", async () => {
  await withGateway(
    ["a", "b", "c", "d", "e", "f"],
    `
  - { name: get-only, match: { path: /m, methods: [GET] }, upstream: a }
  - { name: post-only, match: { path: /m, methods: [POST] }, upstream: b }
  - { name: host-exact, match: { path: /h, host: api.example.com }, upstream: a }
  - { name: host-wild, match: { path: /h, host: "*.example.com" }, upstream: b }
  - { name: host-any, match: { path: /h }, upstream: c }
  - { name: hdr-exact, match: { path: /x, headers: { X-Tenant: blue } }, upstream: a }
  - { name: hdr-regex, match: { path: /x, headers: { X-Tenant: { regex: "^gr(e|a)y$" } } }, upstream: b }
  - { name: query, match: { path: /x, query: { beta: "1" } }, upstream: d }
  - { name: x-any, match: { path: /x }, upstream: c }
  - { name: tie-first, match: { path: /t }, upstream: e }
  - { name: tie-second, match: { path: /t }, upstream: f }
`,
    async (g) => {
      assertEquals((await who(g, "/m")).who, "a");
      assertEquals((await who(g, "/m", { method: "POST", body: "x" })).who, "b");
      const h = async (host: string) => JSON.parse((await rawGet(g.url(), "/h", host)).body);
      assertEquals((await h("api.example.com")).who, "a");
      assertEquals(
        (await h("API.example.com:8080")).who,
        "a",
        "host is case-insensitive, port ignored",
      );
      assertEquals((await h("eu.example.com")).who, "b");
      assertEquals((await h("example.com")).who, "c", "wildcard needs a subdomain");
      assertEquals((await h("evil-example.com")).who, "c");
      assertEquals((await who(g, "/x", { headers: { "x-tenant": "blue" } })).who, "a");
      assertEquals((await who(g, "/x", { headers: { "x-tenant": "grey" } })).who, "b");
      assertEquals((await who(g, "/x", { headers: { "x-tenant": "greyish" } })).who, "c");
      assertEquals((await who(g, "/x?beta=1")).who, "d");
      assertEquals((await who(g, "/x?beta=2")).who, "c");
      assertEquals((await who(g, "/t")).who, "e", "equal specificity: first in file wins");
    },
  );
});

Deno.test("routing: 404 and 405 with Allow in the common error shape", async () => {
  await withGateway(
    ["a"],
    `
  - { name: users, match: { path: /users, methods: [GET, POST] }, upstream: a }
  - { name: users-del, match: { path: /users/admin, methods: [DELETE] }, upstream: a }
`,
    async (g) => {
      await assertError(await fetch(`${g.url()}/nothing`), 404, "route_not_found");
      const res = await fetch(`${g.url()}/users`, { method: "PUT", body: "x" });
      assertEquals(res.headers.get("allow"), "GET, HEAD, POST");
      await assertError(res, 405, "method_not_allowed");
      const head = await fetch(`${g.url()}/users`, { method: "HEAD" });
      assertEquals(head.status, 200, "GET routes answer HEAD");
    },
  );
});

Deno.test("routing: strip_prefix, regex rewrite and prefix rewrite keep the query", async () => {
  await withGateway(
    ["a"],
    `
  - { name: strip, match: { path: /api/v2/users }, strip_prefix: true, upstream: a }
  - name: regex
    match: { path_regex: "^/legacy/(?<id>[0-9]+)$" }
    rewrite: { regex: "^/legacy/([0-9]+)$", replacement: "/items/$1/details" }
    upstream: a
  - { name: prefix, match: { path: /old }, rewrite: { prefix: /new/base }, upstream: a }
`,
    async (g) => {
      assertEquals((await who(g, "/api/v2/users/42?x=1&x=2")).url, "/42?x=1&x=2");
      assertEquals((await who(g, "/api/v2/users")).url, "/");
      assertEquals((await who(g, "/legacy/17?q=a%20b")).url, "/items/17/details?q=a%20b");
      assertEquals((await who(g, "/old/thing")).url, "/new/base/thing");
    },
  );
});

Deno.test("routing: weighted split lands within 3 points of its weights over 2,000 requests", async () => {
  await withGateway(
    ["stable", "canary"],
    `
  - name: split
    match: { path: /s }
    split: [ { upstream: stable, weight: 90 }, { upstream: canary, weight: 10 } ]
  - name: sticky
    match: { path: /sticky }
    split: [ { upstream: stable, weight: 50 }, { upstream: canary, weight: 50 } ]
    sticky: header:X-User
`,
    async (g) => {
      const counts: Record<string, number> = { stable: 0, canary: 0 };
      const n = 2000;
      for (let i = 0; i < n; i += 50) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, () => who(g, "/s")),
        );
        for (const r of batch) counts[r.who!]!++;
      }
      const canaryShare = counts.canary! / n * 100;
      assertOk(Math.abs(canaryShare - 10) <= 3, `canary got ${canaryShare}%`);
      // Sticky: one user always lands on the same side, and users spread over both.
      const sides = new Set<string>();
      for (let u = 0; u < 40; u++) {
        const first = (await who(g, "/sticky", { headers: { "x-user": `user-${u}` } })).who!;
        sides.add(first);
        for (let k = 0; k < 4; k++) {
          assertEquals(
            (await who(g, "/sticky", { headers: { "x-user": `user-${u}` } })).who,
            first,
          );
        }
      }
      assertEquals(sides.size, 2);
    },
  );
});

Deno.test("routing: sticky keys that follow each other split within 3 points of the weights", () => {
  const keys = (n: number, key: (i: number) => string) =>
    Array.from({ length: n }, (_, i) => key(i));
  const cases: [string, string[], number][] = [
    ["u1..u1000", keys(1000, (i) => `u${i + 1}`), 50],
    ["u1..u1000", keys(1000, (i) => `u${i + 1}`), 10],
    ["ids 1..1000", keys(1000, (i) => String(i + 1)), 10],
    ["ids 100000..100999", keys(1000, (i) => String(100000 + i)), 10],
    ["ids 100000..100999", keys(1000, (i) => String(100000 + i)), 50],
    ["10.0.0.1..254", keys(254, (i) => `10.0.0.${i + 1}`), 50],
    ["10.0.0.1..254", keys(254, (i) => `10.0.0.${i + 1}`), 10],
  ];
  for (const [name, list, canaryWeight] of cases) {
    const choice = weightedChoice([
      { item: "stable", weight: 100 - canaryWeight },
      { item: "canary", weight: canaryWeight },
    ]);
    const share = list.filter((k) => choice.pick(k) === "canary").length / list.length * 100;
    assertOk(
      Math.abs(share - canaryWeight) <= 3,
      `${name}: canary got ${share}%, not ${canaryWeight}%`,
    );
  }
});

Deno.test("routing: version negotiation by path, header, Accept and query", async () => {
  await withGateway(
    ["v1", "v2"],
    `
  - { name: users-v1, match: { path: /users, version: 1 }, upstream: v1 }
  - { name: users-v2, match: { path: /users, version: 2 }, upstream: v2 }
`,
    async (g) => {
      assertEquals((await who(g, "/users", { headers: { "x-api-version": "1" } })).who, "v1");
      assertEquals((await who(g, "/users", { headers: { "x-api-version": "2" } })).who, "v2");
      assertEquals(
        (await who(g, "/users", { headers: { accept: "application/vnd.acme.v1+json" } })).who,
        "v1",
      );
      assertEquals((await who(g, "/users?version=1")).who, "v1");
      assertEquals((await who(g, "/users")).who, "v2", "no version: the latest");
      const res = await fetch(`${g.url()}/users`, { headers: { "x-api-version": "9" } });
      assertEquals(res.headers.get("x-api-supported-versions"), "1, 2");
      const body = await assertError(res, 404, "unsupported_version");
      assertEquals((body.error as unknown as Record<string, unknown>).supported_versions, [
        "1",
        "2",
      ]);
    },
    "versioning: { sources: [header, accept, query] }",
  );
});

Deno.test("routing: configured versions compare as requested ones (v3 is 3)", async () => {
  await withGateway(
    ["v2", "v3"],
    `
  - { name: users-v2, match: { path: /users, version: "2" }, upstream: v2 }
  - { name: users-v3, match: { path: /users, version: "v3" }, upstream: v3 }
`,
    async (g) => {
      assertEquals((await who(g, "/users", { headers: { "x-api-version": "v3" } })).who, "v3");
      assertEquals((await who(g, "/users", { headers: { "x-api-version": "3" } })).who, "v3");
      assertEquals((await who(g, "/users")).who, "v2", "the default, written v2");
    },
    'versioning: { sources: [header], default: "v2" }',
  );
});

Deno.test("routing: path versions and a configured fallback for unknown versions", async () => {
  await withGateway(
    ["v1", "v2"],
    `
  - { name: p-v1, match: { path: /v1/orders, version: 1 }, upstream: v1 }
  - { name: p-v2, match: { path: /v2/orders, version: 2 }, upstream: v2 }
`,
    async (g) => {
      assertEquals((await who(g, "/v1/orders")).who, "v1");
      assertEquals((await who(g, "/v2/orders/5")).who, "v2");
      assertEquals((await who(g, "/orders", { headers: { "x-api-version": "7" } })).status, 404);
    },
    "versioning: { default: 1, on_unknown: default }",
  );
});
