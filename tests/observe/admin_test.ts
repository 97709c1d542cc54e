/** Admin API: /config with secrets masked, the bearer token, and /readyz while starting and draining. */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { closedPort, startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { Gateway } from "../../lib/server/gateway.ts";
import { JsonLogger, silentLogger } from "../../lib/observe/logger.ts";

const SECRETS = {
  INTROSPECT_SECRET: "intro-S3CRET",
  MOBILE_KEY: "mobile-K3Y",
  UPSTREAM_URL: "http://127.0.0.1:1",
  REDIS_PASSWORD: "redis-PW",
};

Deno.test("admin /config: the effective config with every secret masked", async () => {
  const g = await startGateway(
    `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0, token: admin-T0KEN }
store:
  kind: redis
  redis: { url: "redis://:\${REDIS_PASSWORD}@127.0.0.1:6390", prefix: "gw:" }
upstreams:
  users:
    targets: [ { url: "\${UPSTREAM_URL}" } ]
    headers: { Authorization: "Basic dXNlcjpwYXNz", X-Static: visible }
auth:
  opaque: { kind: oauth2_introspection, url: "http://127.0.0.1:3/introspect",
            client_id: gateway, client_secret: "\${INTROSPECT_SECRET}" }
  hs: { kind: jwt, secret: hs-L1TERAL, algorithms: [HS256] }
consumers:
  - { id: mobile-app, api_keys: ["\${MOBILE_KEY}", "sha256:${"ab".repeat(32)}"] }
routes:
  - { name: users, match: { path: "/api/\${MISSING:-users}" }, upstream: users }
`,
    { env: SECRETS },
  );
  try {
    const unauthorised = await fetch(`${g.admin}/config`);
    await assertError(unauthorised, 401, "missing_credentials");

    const res = await fetch(`${g.admin}/config`, {
      headers: { authorization: "Bearer admin-T0KEN" },
    });
    assertEquals(res.status, 200);
    const text = await res.text();
    for (
      const secret of [
        ...Object.values(SECRETS),
        "admin-T0KEN",
        "hs-L1TERAL",
        "dXNlcjpwYXNz",
      ]
    ) {
      assertEquals(text.includes(secret), false, `${secret} leaked through /config`);
    }
    const body = JSON.parse(text);
    assertEquals(body.hash, g.gw.plan.hash);
    assertEquals(body.file, g.file);
    const c = body.config;
    assertEquals(c.admin.token, "[redacted]");
    assertEquals(c.auth.opaque.client_secret, "${INTROSPECT_SECRET}");
    assertEquals(c.auth.opaque.client_id, "gateway");
    assertEquals(c.auth.hs.secret, "[redacted]");
    assertEquals(c.consumers[0].api_keys, ["${MOBILE_KEY}", "[redacted]"]);
    assertEquals(c.upstreams.users.targets[0].url, "${UPSTREAM_URL}");
    assertEquals(c.upstreams.users.headers, {
      Authorization: "[redacted]",
      "X-Static": "visible",
    });
    assertEquals(c.store.redis.url, "redis://:${REDIS_PASSWORD}@127.0.0.1:6390");
    // A defaulted variable shows its name, not its default.
    assertEquals(c.routes[0].match.path, "/api/${MISSING}");
    // Defaults applied by the schema are part of the effective config.
    assertEquals(c.observe.access_log.sample, 1);
  } finally {
    await g.close();
  }
});

Deno.test("admin /readyz: starting while the first plan builds, ready after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-ready-" });
  const fifo = `${dir}/access.fifo`;
  const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assertOk(mk.success, "mkfifo failed");
  const adminPort = closedPort();
  const up = startUpstream(() => new Response("ok"));
  await Deno.writeTextFile(
    `${dir}/gateway.yaml`,
    `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { config_watch: { enabled: false } }
observe: { access_log: { path: access.fifo } }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`,
  );
  // Opening a FIFO for writing waits for a reader: the plan build stalls there.
  const starting = Gateway.start({ configFile: `${dir}/gateway.yaml`, logger: silentLogger });
  let reader: Deno.FsFile | null = null;
  try {
    const admin = `http://127.0.0.1:${adminPort}`;
    let ready: Response | null = null;
    // Up to 10 s: the config is loaded before the admin listener opens.
    for (let i = 0; i < 500 && ready === null; i++) {
      ready = await fetch(`${admin}/readyz`).catch(() => null);
      if (ready === null) await new Promise((r) => setTimeout(r, 20));
    }
    assertOk(ready, "the admin listener did not open while the plan was building");
    assertEquals(ready.status, 503);
    assertEquals(await ready.json(), { status: "starting" });
    const health = await fetch(`${admin}/healthz`);
    assertEquals([health.status, await health.json()], [200, { status: "ok" }]);
    const metrics = await fetch(`${admin}/metrics`);
    assertEquals(metrics.status, 200);
    await metrics.body?.cancel();
    // Endpoints that need a config say so in the common error shape.
    await assertError(await fetch(`${admin}/config`), 503, "not_ready");
    await assertError(await fetch(`${admin}/routes`), 503, "not_ready");

    reader = await Deno.open(fifo, { read: true });
    const gw = await starting;
    const after = await fetch(`${admin}/readyz`);
    assertEquals([after.status, await after.json()], [200, { status: "ready" }]);
    await gw.shutdown();
  } finally {
    await starting.then((gw) => gw.shutdown()).catch(() => {});
    reader?.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("admin /readyz: not ready while draining; in-flight requests still finish", async () => {
  const release = Promise.withResolvers<void>();
  const arrived = Promise.withResolvers<void>();
  const up = startUpstream(async () => {
    arrived.resolve();
    await release.promise;
    return new Response("finished");
  });
  const g = await startGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 5 }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`);
  try {
    const before = await fetch(`${g.admin}/readyz`);
    assertEquals([before.status, await before.json()], [200, { status: "ready" }]);
    const slow = fetch(`${g.url()}/slow`).then(async (r) => [r.status, await r.text()]);
    await arrived.promise;
    const stopping = g.gw.shutdown();
    const during = await fetch(`${g.admin}/readyz`);
    assertEquals([during.status, await during.json()], [503, { status: "draining" }]);
    const health = await fetch(`${g.admin}/healthz`);
    assertEquals(health.status, 200);
    await health.body?.cancel();
    release.resolve();
    assertEquals(await slow, [200, "finished"]);
    await stopping;
  } finally {
    release.resolve();
    await g.close();
    await up.close();
  }
});

Deno.test("admin: the Bearer scheme in any case; a malformed escape in the path is a 400", async () => {
  const g = await startGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0, token: admin-T0KEN }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: users, match: { path: /api }, upstream: users }
`);
  const admin = (path: string, authorization: string, method = "GET") =>
    fetch(`${g.admin}${path}`, { method, headers: { authorization } });
  try {
    for (const scheme of ["Bearer admin-T0KEN", "bearer admin-T0KEN", "BEARER  admin-T0KEN"]) {
      const res = await admin("/upstreams", scheme);
      assertEquals(res.status, 200, scheme);
      await res.body?.cancel();
    }
    for (const wrong of ["Bearer admin-T0KE", "Bearer admin-T0KENX", "Basic admin-T0KEN", ""]) {
      await assertError(await admin("/upstreams", wrong), 401, "missing_credentials");
    }
    // A path parameter that does not decode was a 500 (decodeURIComponent threw).
    for (const path of ["/upstreams/%ZZ", "/keys/%E0%A4%A"]) {
      const method = path.startsWith("/keys") ? "DELETE" : "GET";
      await assertError(await admin(path, "Bearer admin-T0KEN", method), 400, "bad_request");
    }
  } finally {
    await g.close();
  }
});

Deno.test("admin: a body over 64 KiB is refused unread; beyond loopback without a token is warned of", async () => {
  const lines: string[] = [];
  const g = await startGateway(
    `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 0.0.0.0, port: 0 }
auth: { keys: { kind: api_key, header: X-API-Key } }
consumers: [ { id: team-a, api_keys: ["key-a-0123456789"] } ]
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: users, match: { path: /api }, upstream: users }
`,
    { logger: new JsonLogger("warn", (l) => lines.push(l)) },
  );
  try {
    const admin = g.admin.replace("0.0.0.0", "127.0.0.1");
    const huge = JSON.stringify({ jti: "x".repeat(100_000), exp: 1 });
    await assertError(
      await fetch(`${admin}/revocations`, { method: "POST", body: huge }),
      413,
      "payload_too_large",
    );
    const warned = lines.map((l) => JSON.parse(l)).filter((l) => /admin API listens/.test(l.msg));
    assertEquals(warned.map((l) => [l.level, l.host]), [["warn", "0.0.0.0"]]);
  } finally {
    await g.close();
  }
});

Deno.test("admin: a reload refused for the token's value neither logs nor answers the token", async () => {
  const lines: string[] = [];
  const TOKEN = "5550123498765";
  const config = (token: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin:
  host: 127.0.0.1
  port: 0
  token: ${token}
server: { config_watch: { enabled: false } }
upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`;
  const g = await startGateway(config('"${ADMIN_TOKEN}"'), {
    env: { ADMIN_TOKEN: TOKEN },
    logger: new JsonLogger("info", (l) => lines.push(l)),
  });
  try {
    // Unquoted, an all-digit value becomes a number, which the schema refuses.
    await Deno.writeTextFile(g.file, config("${ADMIN_TOKEN}"));
    const res = await fetch(`${g.admin}/reload`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const text = await res.text();
    assertEquals(res.status, 422);
    assertOk(text.includes("admin.token: expected string, got a number from ${ADMIN_TOKEN}"), text);
    assertEquals(text.includes(TOKEN), false, text);
    assertOk(lines.some((l) => l.includes("config reload failed")));
    assertEquals(lines.filter((l) => l.includes(TOKEN)), []);
  } finally {
    await g.close();
  }
});

Deno.test("admin /config: a literal password in a URL reads [redacted], as the README shows", async () => {
  // Redis at a closed port: /config answers whether or not the store is reachable.
  const g = await startGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
store: { kind: redis, redis: { url: "redis://worker:s3cr%40t@127.0.0.1:${closedPort()}/0" } }
upstreams: { users: { targets: [ { url: "http://127.0.0.1:${closedPort()}" } ] } }
routes: [ { name: users, match: { path: /api }, upstream: users } ]
`);
  try {
    const text = await (await fetch(`${g.admin}/config`)).text();
    assertEquals(text.includes("s3cr"), false, text);
    // Until 2026-12-07 it read %5Bredacted%5D.
    assertMatch(
      JSON.parse(text).config.store.redis.url,
      /^redis:\/\/worker:\[redacted\]@127\.0\.0\.1:\d+\/0$/,
    );
  } finally {
    await g.close();
  }
});
