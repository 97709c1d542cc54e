/**
 * A JWT whose protected header is longer than `MAX_JWT_HEADER_CHARS` is
 * refused, through a real listener, before jose parses it: whatever the
 * header holds (an allowed algorithm and a known kid, or JSON made to be slow
 * to parse), the answer is 401 `invalid_token` saying why, never a signature
 * check. A header of exactly the limit is verified as any other.
 */
import { base64url } from "jose";
import { assertEquals, assertError } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { MAX_JWT_HEADER_CHARS } from "../../lib/auth/jwt.ts";
import { sign, signingKey, startIdp } from "./idp.ts";

const b64 = (text: string) => base64url.encode(new TextEncoder().encode(text));

Deno.test("jwt provider: a protected header over the limit is refused unparsed, one at it verified", async () => {
  const idp = startIdp();
  const rs1 = await signingKey("RS256", "rs1");
  idp.keys = [rs1];
  const up = startUpstream();
  const g = await startGateway(baseConfig(`
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
auth:
  idp: { kind: jwt, jwks_url: "${idp.jwksUrl}", algorithms: [RS256] }
routes:
  - { name: idp, match: { path: /idp }, upstream: up, auth: [idp] }
`));
  const claims = { sub: "user-1", exp: Math.floor(Date.now() / 1000) + 3600 };
  // `pad` makes the header's JSON `bytes` long, its encoding 4/3 of that.
  const padded = (bytes: number) => {
    const fixed = JSON.stringify({ alg: "RS256", kid: "rs1", pad: "" }).length;
    return sign(rs1, claims, { pad: "p".repeat(bytes - fixed) });
  };
  const call = (token: string) =>
    fetch(`${g.url()}/idp`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
  const tooLong = `The token's protected header is longer than ${MAX_JWT_HEADER_CHARS} characters`;
  try {
    const atLimit = await padded(MAX_JWT_HEADER_CHARS * 3 / 4);
    assertEquals(atLimit.indexOf("."), MAX_JWT_HEADER_CHARS);
    const ok = await call(atLimit);
    assertEquals(ok.status, 200, await ok.text());

    // Validly signed, allowed algorithm, known kid: one character more is refused.
    const over = await padded(MAX_JWT_HEADER_CHARS * 3 / 4 + 1);
    const [, payload, signature] = over.split(".");
    const halfDeep = MAX_JWT_HEADER_CHARS / 2;
    const cases: [string, string][] = [
      ["signed, one character over", over],
      ["a run of [", `${b64("[".repeat(MAX_JWT_HEADER_CHARS))}.${payload}.${signature}`],
      [
        "an allowed algorithm and known kid over nested arrays",
        `${
          b64(`{"alg":"RS256","kid":"rs1","x":${"[".repeat(halfDeep)}${"]".repeat(halfDeep)}}`)
        }.${payload}.${signature}`,
      ],
    ];
    for (const [what, token] of cases) {
      const res = await call(token);
      const challenge = res.headers.get("www-authenticate");
      const body = await assertError(res, 401, "invalid_token");
      assertEquals(body.error.message, tooLong, what);
      assertEquals(
        challenge,
        'Bearer realm="gateway", error="invalid_token", error_description="The token is not valid"',
      );
    }
    assertEquals(up.received.length, 1);
  } finally {
    await g.close();
    await up.close();
    await idp.close();
  }
});
