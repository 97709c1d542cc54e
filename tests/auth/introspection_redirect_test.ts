/**
 * An introspection endpoint that answers with a redirect: the gateway does not
 * follow it. Following re-sent the token and, with `client_auth: post`, the
 * client secret to whatever origin the Location named (fetch keeps a 307's
 * body), and took that origin's answer as the verdict: a server the gateway
 * never authenticated admitted callers of its choosing.
 */
import { assertEquals, assertError } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";

Deno.test("oauth2_introspection: a redirect is an endpoint failure, not followed", async () => {
  const elsewhere: string[] = [];
  const stranger = startUpstream(async (req) => {
    elsewhere.push(await req.text());
    return Response.json({ active: true, sub: "admin", scope: "admin" });
  }, "stranger");
  const redirecting = startUpstream(
    () => new Response(null, { status: 307, headers: { location: `${stranger.url}/introspect` } }),
    "introspection",
  );
  const up = startUpstream();
  const g = await startGateway(
    baseConfig(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  opaque:
    kind: oauth2_introspection
    url: "${redirecting.url}/introspect"
    client_id: gateway
    client_secret: the-client-secret
    client_auth: post
routes:
  - { name: opaque, match: { path: / }, upstream: up, auth: [opaque] }
`),
  );
  try {
    const res = await fetch(`${g.url()}/`, { headers: { authorization: "Bearer tok-1" } });
    await assertError(res, 503, "auth_unavailable");
    assertEquals(redirecting.received.length, 1);
    assertEquals(elsewhere, [], "neither the token nor the client secret went elsewhere");
    assertEquals(up.received.length, 0);
  } finally {
    await g.close();
    await up.close();
    await redirecting.close();
    await stranger.close();
  }
});
