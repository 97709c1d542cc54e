/**
 * How `consumers[].subjects` entries read at load: `<provider>:<identity>`
 * only for a configured identity provider's name (never before `//`, so URIs
 * stay bare), an empty qualified identity is a positioned error, and bare
 * subjects are warned about only when two or more identity providers could
 * vouch for them.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
import { parseSubject } from "../../lib/auth/consumers.ts";

const SECRET = "a-shared-secret-of-at-least-32-bytes!!";
const JWT = `{ kind: jwt, secret: "${SECRET}", algorithms: [HS256] }`;

Deno.test("a subject is qualified only by a configured identity provider's name and a colon", () => {
  const providers = ["bearer", "spiffe", "partner-idp"];
  const cases: [string, string | null, string][] = [
    ["client-42", null, "client-42"],
    ["bearer:client-42", "bearer", "client-42"],
    ["bearer:a:b", "bearer", "a:b"],
    ["partner-idp:x", "partner-idp", "x"],
    // Not a provider of the config (an api_key provider is not passed either): bare.
    ["keys:alice", null, "keys:alice"],
    ["bearerx:client-42", null, "bearerx:client-42"],
    ["Bearer:client-42", null, "Bearer:client-42"],
    // A URI whose scheme is a provider's name stays a bare URI; qualified, it follows the name.
    ["spiffe://example.org/ns/a", null, "spiffe://example.org/ns/a"],
    ["spiffe:spiffe://example.org/ns/a", "spiffe", "spiffe://example.org/ns/a"],
    ["bearer:spiffe://example.org/ns/a", "bearer", "spiffe://example.org/ns/a"],
    ["urn:example:a", null, "urn:example:a"],
  ];
  for (const [entry, provider, identity] of cases) {
    assertEquals(parseSubject(entry, providers), { provider, identity }, entry);
  }
});

Deno.test("a qualified subject with no identity stops the load, positioned", async () => {
  try {
    const g = await startGateway(baseConfig(`auth: { bearer: ${JWT} }
consumers:
  - { id: a, subjects: [ok, "bearer:"] }`));
    await g.close();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    assertMatch(
      e.issues.map(formatIssue).join("\n"),
      /gateway\.yaml:7:\d+: consumers\[0\]\.subjects\[1\]: expected an identity after "bearer:"/,
    );
    return;
  }
  throw new Error("expected a configuration error");
});

Deno.test("bare subjects are warned about at load only with two or more identity providers", async () => {
  const warnings = async (auth: string) => {
    const lines: string[] = [];
    const g = await startGateway(
      baseConfig(`auth: ${auth}
consumers:
  - { id: a, subjects: [client-42, "bearer:client-43"], api_keys: ["a-key-0123456789"] }`),
      { logger: new JsonLogger("warn", (l) => lines.push(l)) },
    );
    await g.close();
    return lines.map((l) => JSON.parse(l)).filter((l) => /bare subject/.test(l.msg))
      .map((l) => [l.consumer, l.subject, l.providers]);
  };
  // One identity provider (an API key provider vouches for no subject): nothing to borrow.
  assertEquals(await warnings(`{ bearer: ${JWT}, keys: { kind: api_key } }`), []);
  assertEquals(
    await warnings(`{ bearer: ${JWT}, partner: ${JWT}, keys: { kind: api_key } }`),
    [["a", "client-42", ["bearer", "partner"]]],
  );
});
