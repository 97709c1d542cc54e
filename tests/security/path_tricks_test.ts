/**
 * Path tricks sent raw (fetch would normalise them first). Each is answered as
 * the README's security table says, and the upstream's record shows exactly
 * which paths reached it: only the normalised form chosen by routing.
 */
import { assertEquals } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: public, match: { path: /public }, upstream: app }
  - { name: admin, match: { path: /admin }, upstream: app, ip: { allow: [10.0.0.0/8] } }
  - { name: stripped, match: { path: /svc }, strip_prefix: true, upstream: app }
`;

/** [raw request target, status, path the upstream receives (null: nothing reaches it)] */
const CASES: [string, number, string | null][] = [
  ["/public/a", 200, "/public/a"],
  ["/public/../admin", 403, null], // resolved to /admin, then the admin route's IP rules refuse
  ["/public/%2e%2e/admin", 403, null],
  ["/public/%2E%2e/admin", 403, null],
  ["/public/.%2e/admin", 403, null],
  ["/public/..%2fadmin", 400, null], // encoded slash
  ["/public%2f..%2fadmin", 400, null],
  ["/public/..%5cadmin", 400, null], // encoded backslash
  ["/public/..\\admin", 400, null], // raw backslash
  ["/public/..;/admin", 400, null], // Tomcat-style path parameter on a dot segment
  ["/public/.;/x", 400, null],
  ["/admin;x=1", 400, null], // a servlet container serves it as /admin
  ["/public/a;jsessionid=1/b", 400, null],
  ["/public/%00", 400, null],
  ["/public/%0d%0aX-Injected:%201", 400, null], // CRLF injection attempt
  ["/public/%zz", 400, null], // invalid percent-encoding
  ["/../public/a", 400, null], // climbs above the root
  ["/public/../../etc/passwd", 400, null],
  ["//public//a", 200, "/public/a"], // // merged
  ["/public/./a/./b", 200, "/public/a/b"],
  ["/public/%7euser", 200, "/public/~user"], // unreserved decoded
  ["/ADMIN", 404, null], // routing is case-sensitive: no route, not the admin route
  ["/Admin/x", 404, null],
  ["/\uff41dmin", 404, null], // full-width a: percent-encoded, matches nothing
  ["/public/\uff0e\uff0e/admin", 200, "/public/%EF%BC%8E%EF%BC%8E/admin"], // full-width dots are not dots
  ["/public/%ef%bc%8e%ef%bc%8e/admin", 200, "/public/%EF%BC%8E%EF%BC%8E/admin"],
  ["/public/%c0%ae%c0%ae/admin", 200, "/public/%C0%AE%C0%AE/admin"], // overlong UTF-8 stays opaque
  ["/public/%252e%252e/admin", 200, "/public/%252e%252e/admin"], // double encoding stays encoded
  ["/svc/../admin", 403, null],
  ["/svc/%2e%2e/public/x", 200, "/public/x"], // resolved before routing: the public route serves it
  ["/svc/a/../b", 200, "/b"], // strip_prefix acts on the normalised path
  ["/public/a?x=../../etc", 200, "/public/a?x=../../etc"], // the query is not a path
  ["/public/a#frag", 400, null],
];

Deno.test("path tricks are normalised or refused before routing; the upstream sees only what routing chose", async () => {
  await withRig(config, async ({ g, up }) => {
    const expectedPaths: string[] = [];
    for (const [target, status, forwarded] of CASES) {
      const before = up.received.length;
      const res = await rawGet(g.url(), target, "localhost");
      assertEquals(res.status, status, `${target}: ${res.body}`);
      if (status >= 400) {
        const body = JSON.parse(res.body);
        assertEquals(typeof body.error.code, "string", target);
      }
      const got = up.received.slice(before).map((r) => r.url);
      assertEquals(got, forwarded === null ? [] : [forwarded], target);
      if (forwarded !== null) expectedPaths.push(forwarded);
    }
    assertEquals(up.received.map((r) => r.url), expectedPaths);
  });
});

Deno.test("merge_slashes: false forwards // as sent and routes on it", async () => {
  const body = (u: string) => `
security: { merge_slashes: false }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: public, match: { path: /public }, upstream: app }
`;
  await withRig(body, async ({ g, up }) => {
    assertEquals((await rawGet(g.url(), "/public//a", "localhost")).status, 200);
    assertEquals((await rawGet(g.url(), "//public/a", "localhost")).status, 404);
    assertEquals(up.received.map((r) => r.url), ["/public//a"]);
  });
});

Deno.test("allow_path_parameters: true routes and forwards ;parameters as sent", async () => {
  const body = (u: string) => `
security: { allow_path_parameters: true }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: public, match: { path: /public }, upstream: app }
`;
  await withRig(body, async ({ g, up }) => {
    assertEquals((await rawGet(g.url(), "/public/a;v=1/b", "localhost")).status, 200);
    assertEquals((await rawGet(g.url(), "/public;v=1", "localhost")).status, 404);
    assertEquals((await rawGet(g.url(), "/public/..;/x", "localhost")).status, 400);
    assertEquals(up.received.map((r) => r.url), ["/public/a;v=1/b"]);
  });
});

Deno.test("an absolute-form target naming another host than Host is refused", async () => {
  const body = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: internal, match: { host: [internal.example] }, upstream: app }
  - { name: public, match: { path: / }, upstream: app }
`;
  await withRig(body, async ({ g, up }) => {
    const spoof = await rawGet(g.url(), "http://internal.example/x", "public.example");
    assertEquals(spoof.status, 400);
    const same = await rawGet(g.url(), "http://internal.example/x", "Internal.Example:80");
    assertEquals(same.status, 200);
    // An empty path is "/" (RFC 9110 §4.2.3); the query stays.
    const bare = await rawGet(g.url(), "http://internal.example?q=1", "internal.example");
    assertEquals(bare.status, 200);
    // The target's authority is the request's, not the Host it overrides (RFC 9112 §3.2.2).
    assertEquals(up.received.map((r) => [r.url, r.headers.get("x-forwarded-host")]), [
      ["/x", "internal.example"],
      ["/?q=1", "internal.example"],
    ]);
  });
});
