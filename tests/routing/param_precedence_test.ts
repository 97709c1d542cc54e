/**
 * Routes whose literal text before the first `{param}` is the same are ranked
 * by all their literal text: `/users/{id}/posts` wins over `/users/{id}` for
 * the paths both match, wherever each stands in the file.
 */
import { assertEquals } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { type RawUpstream, startRawUpstream } from "../helpers/raw_upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";

const NAMES = ["user", "posts", "sub", "exact"] as const;
type Name = typeof NAMES[number];

async function withRoutes(
  routes: string,
  fn: (servedBy: (target: string) => Promise<[Name, string]>) => Promise<void>,
): Promise<void> {
  const ups = Object.fromEntries(
    NAMES.map((n) => [n, startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"))]),
  ) as Record<Name, RawUpstream>;
  const g = await startGateway(baseConfig(`
upstreams:
${NAMES.map((n) => `  ${n}: { targets: [ { url: "${ups[n].url}" } ] }`).join("\n")}
routes:
${routes}`));
  try {
    await fn(async (target) => {
      const counts = NAMES.map((n) => ups[n].paths.length);
      const res = await rawGet(g.url(), target, "localhost");
      assertEquals(res.status, 204, `${target}: ${res.raw}`);
      const i = NAMES.findIndex((n, i) => ups[n].paths.length > counts[i]!);
      return [NAMES[i]!, ups[NAMES[i]!].paths.at(-1)!];
    });
  } finally {
    await g.close();
    for (const u of Object.values(ups)) u.close();
  }
}

const SHORT_FIRST = `
  - { name: user, match: { path: "/users/{id}" }, upstream: user }
  - { name: posts, match: { path: "/users/{id}/posts" }, upstream: posts }
  - { name: sub, match: { path: "/users/{id}/{section}" }, upstream: sub }
  - { name: exact, match: { path_exact: "/users/{id}/posts/{post}" }, upstream: exact }
`;

Deno.test("a longer parameterised route wins over a shorter one declared before it", async () => {
  const lines = SHORT_FIRST.split("\n").filter((l) => l !== "");
  for (const routes of [SHORT_FIRST, lines.reverse().join("\n")]) {
    await withRoutes(routes, async (servedBy) => {
      assertEquals(await servedBy("/users/5"), ["user", "/users/5"]);
      assertEquals(await servedBy("/users/5/posts?x=1"), ["posts", "/users/5/posts?x=1"]);
      assertEquals(await servedBy("/users/5/posts/9/likes"), ["posts", "/users/5/posts/9/likes"]);
      assertEquals(await servedBy("/users/5/posts/9"), ["exact", "/users/5/posts/9"]);
      assertEquals(await servedBy("/users/5/friends"), ["sub", "/users/5/friends"]);
      assertEquals(await servedBy("/users/5/friends/2"), ["sub", "/users/5/friends/2"]);
    });
  }
});
