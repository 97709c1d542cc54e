/**
 * Versioning reads the version from a header or a query parameter by value,
 * for every versioned route: like any field a route matches by value, a
 * request that repeats it is refused (400 bad_request, "Repeated ..."), never
 * routed on one reading (the router's joined field or first parameter, an
 * upstream's first field or last parameter).
 */
import { assertEquals } from "../helpers/assert.ts";
import { rawRequest } from "../helpers/raw.ts";
import { type Received, startUpstream, type TestServer } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";

const get = (target: string, ...extra: string[]) => [
  `GET ${target} HTTP/1.1`,
  "Host: localhost",
  "Connection: close",
  ...extra,
];

async function withVersions(
  versioning: string,
  fn: (g: TestGateway, received: () => number) => Promise<void>,
): Promise<void> {
  const named = (who: string) =>
    startUpstream((_req: Request, r: Received) => Response.json({ at: `${who} ${r.url}` }));
  const ups: TestServer[] = [named("v1"), named("v2")];
  try {
    const g = await startGateway(baseConfig(`${versioning}
upstreams:
  v1: { targets: [ { url: "${ups[0]!.url}" } ] }
  v2: { targets: [ { url: "${ups[1]!.url}" } ] }
routes:
  - { name: users-v1, match: { path: /users, version: 1 }, upstream: v1 }
  - { name: users-v2, match: { path: /users, version: 2 }, upstream: v2 }
  - { name: orders-v2, match: { path: /v2/orders, version: 2 }, upstream: v2 }
  - { name: health, match: { path: /health }, upstream: v1 }
`));
    try {
      await fn(g, () => ups[0]!.received.length + ups[1]!.received.length);
    } finally {
      await g.close();
    }
  } finally {
    for (const u of ups) await u.close();
  }
}

async function refused(g: TestGateway, head: string[], message: string): Promise<void> {
  const res = await rawRequest(g.url(), head);
  assertEquals(res.status, 400, `${head.join(" | ")}: ${res.raw}`);
  const body = JSON.parse(res.body);
  assertEquals([body.error.code, body.error.message], ["bad_request", message]);
}

async function servedBy(g: TestGateway, head: string[]): Promise<string> {
  const res = await rawRequest(g.url(), head);
  assertEquals(res.status, 200, `${head.join(" | ")}: ${res.raw}`);
  return JSON.parse(res.body).at;
}

Deno.test("a repeated version header or query parameter is refused as a repeated matched field", async () => {
  // on_unknown: default would serve the joined "1, 2" as the default version.
  await withVersions("versioning: { default: 1, on_unknown: default }", async (g, received) => {
    await refused(
      g,
      get("/users", "X-API-Version: 1", "X-API-Version: 2"),
      "Repeated X-API-Version field",
    );
    await refused(
      g,
      get("/users", "x-api-version: 2", "X-Api-Version: 2"),
      "Repeated X-API-Version field",
    );
    await refused(g, get("/users?version=1&version=2"), "Repeated query parameter version");
    await refused(g, get("/users?version=2&x=1&versio%6E=2"), "Repeated query parameter version");
    // Whichever source decides: a path version does not make a repeated header harmless.
    await refused(
      g,
      get("/v2/orders", "X-API-Version: 2", "X-API-Version: 2"),
      "Repeated X-API-Version field",
    );
    assertEquals(received(), 0);

    // Once, each decides as before; on a path no versioned route covers, repeats pass.
    assertEquals(await servedBy(g, get("/users", "X-API-Version: 2")), "v2 /users");
    assertEquals(await servedBy(g, get("/users?version=2")), "v2 /users?version=2");
    assertEquals(await servedBy(g, get("/users")), "v1 /users");
    assertEquals(await servedBy(g, get("/v2/orders", "X-API-Version: 2")), "v2 /v2/orders");
    assertEquals(
      await servedBy(g, get("/health?version=1&version=2", "X-API-Version: 1", "X-API-Version: 2")),
      "v1 /health?version=1&version=2",
    );
  });
});

Deno.test("only the version sources configured are held to one value, by their configured names", async () => {
  await withVersions("versioning: { sources: [header], header: Api-Version }", async (g) => {
    await refused(
      g,
      get("/users", "api-version: 1", "API-VERSION: 2"),
      "Repeated Api-Version field",
    );
    // Not a version source here: the query parameter and the default header name are not concerned.
    assertEquals(
      await servedBy(g, get("/users?version=1&version=2")),
      "v2 /users?version=1&version=2",
    );
    assertEquals(
      await servedBy(g, get("/users", "Api-Version: 1", "X-API-Version: 2", "X-API-Version: 1")),
      "v1 /users",
    );
  });
  await withVersions("versioning: { sources: [query], query: v }", async (g) => {
    await refused(g, get("/users?v=1&v=1"), "Repeated query parameter v");
    assertEquals(
      await servedBy(g, get("/users?v=1", "X-API-Version: 2", "X-API-Version: 2")),
      "v1 /users?v=1",
    );
  });
});
