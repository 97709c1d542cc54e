/**
 * IP allow/deny lists and the client address through a running gateway: the
 * upstream's own record shows that refused requests never reached it and which
 * forwarded-for chain it was given.
 */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { receivedPaths, withRig } from "./_setup.ts";

const routes = (u: string, security = "") => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
${security}
routes:
  - name: private
    match: { path: /private }
    upstream: app
    ip: { allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.6.6.0/24] }
  - name: public
    match: { path: /public }
    upstream: app
`;

Deno.test("route allow list: loopback is outside it and refused; other routes serve", async () => {
  await withRig((u) => routes(u), async ({ g, up }) => {
    await assertError(await fetch(`${g.url()}/private/x`), 403, "ip_denied");
    const ok = await fetch(`${g.url()}/public/x`);
    assertEquals(ok.status, 200);
    await ok.body?.cancel();
    assertEquals(receivedPaths(up), ["/public/x"]);
  });
});

Deno.test("a spoofed X-Forwarded-For from an untrusted peer is ignored and not forwarded", async () => {
  await withRig((u) => routes(u), async ({ g, up }) => {
    const res = await fetch(`${g.url()}/private/x`, {
      headers: {
        "x-forwarded-for": "10.1.2.3",
        "x-real-ip": "10.1.2.3",
        forwarded: "for=10.1.2.3",
      },
    });
    await assertError(res, 403, "ip_denied");
    const pub = await fetch(`${g.url()}/public/x`, {
      headers: {
        "x-forwarded-for": "10.1.2.3",
        "x-real-ip": "10.1.2.3",
        forwarded: "for=10.1.2.3",
      },
    });
    await pub.body?.cancel();
    assertEquals(up.received.length, 1);
    const h = up.received[0]!.headers;
    assertEquals(h.get("x-forwarded-for"), "127.0.0.1");
    assertEquals(h.get("x-real-ip"), null);
    assertEquals(h.get("forwarded"), null);
  });
});

Deno.test("behind a trusted proxy the right-most untrusted X-Forwarded-For address is the client", async () => {
  const security = "security: { trusted_proxies: [127.0.0.0/8, 10.99.0.0/16] }";
  await withRig((u) => routes(u, security), async ({ g, up }) => {
    const cases: [string, number][] = [
      ["10.1.2.3", 200], // the client is inside the allow list
      ["6.6.6.6, 10.1.2.3", 200], // a forged left part does not matter
      ["10.1.2.3, 6.6.6.6", 403], // the right-most untrusted hop is 6.6.6.6
      ["10.1.2.3, 10.99.0.5", 200], // a trusted hop is skipped
      ["10.6.6.6", 403], // deny wins over allow
      ["2001:db8::42", 200],
      ["[2001:db8::42]:5555", 200],
      ["not-an-address", 403], // garbage: the trusted peer is the client, outside the list
    ];
    for (const [xff, status] of cases) {
      const res = await fetch(`${g.url()}/private/${status}`, {
        headers: { "x-forwarded-for": xff },
      });
      assertEquals(res.status, status, xff);
      await res.body?.cancel();
    }
    assertEquals(up.received.length, 5);
    // The trusted chain is extended with the peer, not replaced.
    assertEquals(up.received[1]!.headers.get("x-forwarded-for"), "6.6.6.6, 10.1.2.3, 127.0.0.1");
  });
});

Deno.test("client_ip_header: forwarded reads RFC 7239 for= nodes from trusted proxies", async () => {
  const security = "security: { trusted_proxies: [127.0.0.0/8], client_ip_header: forwarded }";
  await withRig((u) => routes(u, security), async ({ g }) => {
    const cases: [Record<string, string>, number][] = [
      [{ forwarded: 'for="10.1.2.3:4444";proto=https' }, 200],
      [{ forwarded: "for=6.6.6.6, for=10.1.2.3" }, 200],
      [{ forwarded: 'for="[2001:db8::1]"' }, 200],
      [{ forwarded: "for=10.1.2.3, for=6.6.6.6" }, 403],
      // X-Forwarded-For is not the configured header: a client cannot use it to pick its address.
      [{ "x-forwarded-for": "10.1.2.3" }, 403],
    ];
    for (const [headers, status] of cases) {
      const res = await fetch(`${g.url()}/private/x`, { headers });
      assertEquals(res.status, status, JSON.stringify(headers));
      await res.body?.cancel();
    }
  });
});

Deno.test("global rules run before routing, also for paths no route matches", async () => {
  const security = "security: { ip: { deny: [127.0.0.0/8] } }";
  await withRig((u) => routes(u, security), async ({ g, up }) => {
    await assertError(await fetch(`${g.url()}/public/x`), 403, "ip_denied");
    await assertError(await fetch(`${g.url()}/nowhere`), 403, "ip_denied");
    assertEquals(up.received.length, 0);
  });
});

Deno.test("IPv6 peers and IPv4 peers of a dual-stack listener match their rules", async () => {
  const listeners = `listeners:
  - { name: v6, host: "::1", port: 0 }
  - { name: dual, host: "::", port: 0 }`;
  const body = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: v6only, match: { path: /v6 }, upstream: app, ip: { allow: ["::1/128"] } }
  - { name: v4only, match: { path: /v4 }, upstream: app, ip: { allow: [127.0.0.0/8] } }
  - { name: no-mapped, match: { path: /nomapped }, upstream: app, ip: { deny: ["::ffff:127.0.0.0/104"] } }
`;
  await withRig(body, async ({ g, up }) => {
    const v6 = g.url("v6");
    const dualPort = new URL(g.url("dual")).port;
    const v4 = `http://127.0.0.1:${dualPort}`;
    const expect: [string, number][] = [
      [`${v6}/v6`, 200],
      [`${v6}/v4`, 403],
      [`${v4}/v4`, 200], // peer ::ffff:127.0.0.1 is 127.0.0.1
      [`${v4}/v6`, 403],
      [`${v4}/nomapped`, 403], // a mapped-form rule matches the plain IPv4 peer
      [`${v6}/nomapped`, 200],
    ];
    for (const [url, status] of expect) {
      const res = await fetch(url);
      assertEquals(res.status, status, url);
      await res.body?.cancel();
    }
    assertEquals(up.received.map((r) => r.headers.get("x-forwarded-for")), [
      "::1",
      "127.0.0.1",
      "::1",
    ]);
  }, { listeners });
});

Deno.test("a block with address bits past its prefix (10.0.0.1/8) is a positioned config error", async () => {
  const cases: [string, RegExp][] = [
    [
      "trusted_proxies: [10.0.0.1/8]",
      /security\.trusted_proxies\[0\]: 10\.0\.0\.1\/8 .*10\.0\.0\.0\/8/,
    ],
    ['ip: { deny: [10.0.0.0/8, "2001:db8::1/32"] }', /security\.ip\.deny\[1\]: .*2001:db8::\/32/],
    [
      'ip: { allow: ["::ffff:10.1.2.3/104"] }',
      /security\.ip\.allow\[0\]: .*::ffff:10\.0\.0\.0\/104/,
    ],
  ];
  for (const [security, message] of cases) {
    const yaml = baseConfig(`
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:9" } ] }
security: { ${security} }
routes:
  - { name: r, match: { path: / }, upstream: app }
`);
    const error = await startGateway(yaml).then(
      async (g) => {
        await g.close();
        return null;
      },
      (e: Error) => e.message,
    );
    assertOk(error !== null, `${security} was accepted`);
    assertMatch(error!, message);
  }
});

Deno.test("/0, /32 and /128 blocks: every IPv4 address, one address", async () => {
  const body = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: all4, match: { path: /all4 }, upstream: app, ip: { deny: [0.0.0.0/0] } }
  - { name: one, match: { path: /one }, upstream: app, ip: { allow: [127.0.0.1/32, "::1/128"] } }
  - { name: other, match: { path: /other }, upstream: app, ip: { allow: [127.0.0.2/32] } }
`;
  await withRig(body, async ({ g, up }) => {
    for (const [path, status] of [["/all4", 403], ["/one", 200], ["/other", 403]]) {
      const res = await fetch(`${g.url()}${path}`);
      assertEquals(res.status, status, path as string);
      await res.body?.cancel();
    }
    assertEquals(receivedPaths(up), ["/one"]);
  });
});

Deno.test("an IPv6 block wider than the mapped range (::/0) holds no IPv4 client", async () => {
  const body = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: no6, match: { path: /no6 }, upstream: app, ip: { deny: ["::/0"] } }
  - { name: only6, match: { path: /only6 }, upstream: app, ip: { allow: ["::/0"] } }
  - { name: mapped, match: { path: /mapped }, upstream: app, ip: { allow: ["::ffff:127.0.0.0/104"] } }
`;
  await withRig(body, async ({ g, up }) => {
    // Until 2026-12-07 ::/0 held every IPv4 address too (in its mapped form): "deny every
    // IPv6 client" refused everyone.
    for (const [path, status] of [["/no6", 200], ["/only6", 403], ["/mapped", 200]]) {
      const res = await fetch(`${g.url()}${path}`);
      assertEquals(res.status, status, path as string);
      await res.body?.cancel();
    }
    assertEquals(receivedPaths(up), ["/no6", "/mapped"]);
  });
});
