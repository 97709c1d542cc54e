/**
 * `consumers[].subjects` with several identity providers: a subject written
 * `<provider>:<identity>` maps that provider's caller only, so a partner IdP
 * whose `sub` is the same string gets no consumer's plan, scopes or headers; a
 * bare subject keeps mapping every provider's caller, with a warning at load.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
import { sign } from "./idp.ts";

const SECRETS = {
  company: "the-company-idp-secret-of-32-bytes!!",
  partner: "the-partner-idp-secret-of-32-bytes!!",
  spiffe: "the-svid-issuer-secret-of-32-bytes!!!",
};
type Idp = keyof typeof SECRETS;

const token = (idp: Idp, sub: string) =>
  sign(
    { alg: "HS256", privateKey: new TextEncoder().encode(SECRETS[idp]) },
    { sub, exp: Math.floor(Date.now() / 1000) + 600 },
  );

const config = (upstream: string) =>
  baseConfig(`
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
auth:
  company: { kind: jwt, secret: "${SECRETS.company}", algorithms: [HS256] }
  partner: { kind: jwt, secret: "${SECRETS.partner}", algorithms: [HS256] }
  spiffe: { kind: jwt, secret: "${SECRETS.spiffe}", algorithms: [HS256] }
plans: { premium: {} }
consumers:
  - id: mobile-app
    plan: premium
    subjects: ["company:client-42"]
    headers: { X-Tenant: mobile }
  - { id: shared-tool, subjects: [tool-7] }
  - { id: workload, subjects: ["spiffe://example.org/ns/a", "partner:spiffe://example.org/ns/b"] }
routes:
  - { name: users, match: { path: /users }, upstream: up, auth: [company, partner] }
  - { name: any, match: { path: /any }, upstream: up, auth: [company, partner, spiffe] }
`);

Deno.test("a subject qualified by its provider maps that provider's caller only", async (t) => {
  const up = startUpstream((req) =>
    Response.json({
      consumer: req.headers.get("x-consumer-id"),
      tenant: req.headers.get("x-tenant"),
    })
  );
  const lines: string[] = [];
  const g = await startGateway(config(up.url), {
    logger: new JsonLogger("warn", (l) => lines.push(l)),
  });
  const call = async (path: string, idp: Idp, sub: string) => {
    const res = await fetch(`${g.url()}${path}`, {
      headers: { authorization: `Bearer ${await token(idp, sub)}` },
    });
    return res;
  };
  const seen = async (path: string, idp: Idp, sub: string) => {
    const res = await call(path, idp, sub);
    assertEquals(res.status, 200, `${idp} ${sub}: ${res.status} ${await res.clone().text()}`);
    return await res.json();
  };
  try {
    await t.step("the named provider's caller is the consumer, with its headers", async () => {
      assertEquals(await seen("/users", "company", "client-42"), {
        consumer: "mobile-app",
        tenant: "mobile",
      });
    });

    await t.step("another provider's caller with the same sub borrows nothing", async () => {
      assertEquals(await seen("/users", "partner", "client-42"), {
        consumer: "partner:client-42",
        tenant: null,
      });
    });

    await t.step("a bare subject still maps every provider's caller", async () => {
      assertEquals((await seen("/any", "company", "tool-7")).consumer, "shared-tool");
      assertEquals((await seen("/any", "partner", "tool-7")).consumer, "shared-tool");
    });

    await t.step("a URI stays bare beside a provider named as its scheme", async () => {
      // JWT-SVIDs carry the SPIFFE id as `sub`; the provider is called `spiffe`.
      assertEquals(
        (await seen("/any", "spiffe", "spiffe://example.org/ns/a")).consumer,
        "workload",
      );
      assertEquals(
        (await seen("/any", "company", "spiffe://example.org/ns/a")).consumer,
        "workload",
      );
      // Qualified, a URI is the identity after the provider's name.
      assertEquals(
        (await seen("/any", "partner", "spiffe://example.org/ns/b")).consumer,
        "workload",
      );
      assertEquals(
        (await seen("/any", "spiffe", "spiffe://example.org/ns/b")).consumer,
        "spiffe:spiffe://example.org/ns/b",
      );
    });

    await t.step("each bare subject was named in a warning at load, qualified ones not", () => {
      const warned = lines.map((l) => JSON.parse(l))
        .filter((l) => l.level === "warn" && /bare subject/.test(l.msg));
      assertEquals(
        warned.map((w) => [w.consumer, w.subject, w.at]),
        [
          ["shared-tool", "tool-7", "consumers[1].subjects[0]"],
          ["workload", "spiffe://example.org/ns/a", "consumers[2].subjects[0]"],
        ],
      );
      assertOk(String(warned[0].hint).includes('"company:tool-7"'), warned[0].hint);
    });
  } finally {
    await g.close();
    await up.close();
  }
});
