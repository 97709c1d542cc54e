import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { compileTemplate, templateVariables } from "../../lib/transform/template.ts";
import { consumer, makeContext } from "./request_context.ts";

const ctx = makeContext("http://api.test/users/42?page=3&tag=a%20b", {
  headers: { "X-Tenant": "acme" },
  consumer: { id: "mobile-app", plan: "premium", scopes: new Set(), configured: true },
  identity: {
    provider: "bearer",
    subject: "user-7",
    scopes: new Set(["read"]),
    claims: { sub: "user-7", org: { id: "o-1" }, roles: ["admin", "dev"], n: 5 },
  },
  route: "users",
  params: { id: "42" },
});

const cases: [string, string][] = [
  ["edge", "edge"],
  ["${consumer.id}", "mobile-app"],
  ["plan=${consumer.plan}", "plan=premium"],
  ["${claim.sub}", "user-7"],
  ["${claim.org.id}", "o-1"],
  ["${claim.roles}", "admin dev"],
  ["${claim.n}", "5"],
  ["${claim.missing}", ""],
  ["${header.X-Tenant}", "acme"],
  ["${header.x-tenant}/${header.absent}", "acme/"],
  ["${route.name}", "users"],
  ["${request_id}", "req-1"],
  ["${query.page}-${query.tag}", "3-a b"],
  ["${param.id}", "42"],
  ["${identity.subject}@${identity.provider}", "user-7@bearer"],
  [
    "${request.method} ${request.path} ${request.host} ${request.client_ip}",
    "GET /users/42 api.test 203.0.113.9",
  ],
  ["cost: $${literal}", "cost: ${literal}"],
];

for (const [template, expected] of cases) {
  Deno.test(`compileTemplate() renders ${template}`, () => {
    assertEquals(compileTemplate(template)(ctx), expected);
  });
}

Deno.test("compileTemplate() encodes substituted values only, when asked", () => {
  const t = compileTemplate("/search?q=${query.tag}&by=${consumer.id}", encodeURIComponent);
  assertEquals(t(ctx), "/search?q=a%20b&by=mobile-app");
});

Deno.test("compileTemplate() gives empty values for an anonymous request", () => {
  const anon = makeContext("http://api.test/");
  assertEquals(compileTemplate("[${consumer.id}][${claim.sub}][${param.id}]")(anon), "[][][]");
  assertEquals(
    compileTemplate("${consumer.id}")(makeContext("http://x/", { consumer: consumer("c") })),
    "c",
  );
});

Deno.test("compileTemplate() refuses unknown variables and unclosed ones", () => {
  assertThrows(
    () => compileTemplate("${consumer.name}"),
    /unknown template variable \$\{consumer\.name\}/,
  );
  assertThrows(() => compileTemplate("${header.}"), /unknown template variable/);
  assertThrows(() => compileTemplate("a ${claim.sub"), /unclosed/);
});

Deno.test("templateVariables() lists what a template uses", () => {
  assertEquals(templateVariables("/u/${param.id}?x=${query.x}&$${no}"), ["param.id", "query.x"]);
});
