/**
 * The authority a request is routed, checked and forwarded by. With an
 * absolute-form target it is the target's (RFC 9112 §3.2.2), held to Host's
 * syntax; a Host the router and a URL parser would read differently (userinfo,
 * `\`, `#`, `%`) is refused, so an upstream choosing a virtual host by the
 * forwarded Host never sees another host than the route was chosen for.
 */
import { assertEquals } from "../helpers/assert.ts";
import { parseResponse, rawRequest, type RawResponse, readUntilClose } from "../helpers/raw.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { writeAllTo } from "../../lib/proxy/http1/socket_io.ts";
import { withRig } from "./_setup.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";

const vhosts = (u: string) => `
auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: alice, api_keys: ["secret-alice"] }
upstreams:
  vhosts: { targets: [ { url: "${u}" } ], preserve_host: true }
  plain: { targets: [ { url: "${u}" } ] }
routes:
  - { name: admin-site, match: { path: /, host: [admin.example.com] }, upstream: vhosts, auth: [keys] }
  - { name: fqdn-site, match: { path: /, host: [fqdn.example.] }, upstream: vhosts, auth: [keys] }
  - { name: tenant-sites, match: { path: /, host: ["*.tenants.example"] }, upstream: vhosts, auth: [keys] }
  - { name: plain-site, match: { path: /plain }, upstream: plain }
  - { name: public-site, match: { path: / }, upstream: vhosts }
`;

const get = (target: string, host: string) => [
  `GET ${target} HTTP/1.1`,
  `Host: ${host}`,
  "Connection: close",
];

/** Host values the router and a URL parser (or an upstream) would read as different hosts. */
const AMBIGUOUS: [string, string][] = [
  ["http://public.example/x", "admin.example.com:@public.example"],
  ["/x", "admin.example.com:@public.example"],
  ["http://admin%2eexample.com/x", "admin%2eexample.com"],
  ["http://h.example#/x", "h.example#"],
  ["/x", "h.example#"],
  ["http://admin.example.com\\@public.example/x", "public.example"],
  ["/x", "admin.example.com\\@public.example"],
  ["http://u:p@public.example/x", "public.example"],
  ["http://public.example:x/x", "public.example"],
];

function assertRefused(res: RawResponse, what: string): void {
  assertEquals(res.status, 400, `${what}: ${res.raw}`);
  assertEquals(JSON.parse(res.body).error.code, "bad_request", what);
}

Deno.test("an absolute-form target is routed and forwarded by its own authority; an ambiguous one is refused", async () => {
  await withRig(vhosts, async ({ g, up }) => {
    for (const [target, host] of AMBIGUOUS) {
      assertRefused(await rawRequest(g.url(), get(target, host)), `${target} / Host: ${host}`);
    }
    assertEquals(up.received.length, 0, "none of them reached the upstream");

    // The target's port wins over the Host's (same host, so they agree).
    const ported = await rawRequest(
      g.url(),
      get("http://public.example:1111/x", "public.example:2222"),
    );
    assertEquals(ported.status, 200, ported.raw);
    const plain = await rawRequest(
      g.url(),
      get("http://public.example:1111/plain", "public.example:2222"),
    );
    assertEquals(plain.status, 200, plain.raw);
    const seen = up.received.map((r) => [r.headers.get("host"), r.headers.get("x-forwarded-host")]);
    assertEquals(seen, [
      ["public.example:1111", "public.example:1111"],
      [new URL(up.url).host, "public.example:1111"],
    ]);

    // The admin vhost still needs its key, in either form.
    assertEquals(
      (await rawRequest(g.url(), get("http://admin.example.com/x", "admin.example.com"))).status,
      401,
    );
    assertEquals((await rawRequest(g.url(), get("/x", "admin.example.com"))).status, 401);
  });
});

// The gateway's own server over TLS, with HTTP/2 on the runtime's (which parses the head), and
// node:https, which serves TLS-1.3-only and mTLS listeners (and parses the head too).
for (
  const [server, setting] of [
    ["own server", ""],
    ["Deno.serve", ", http2: true"],
    ["node:https", ', min_version: "1.3"'],
  ]
) {
  Deno.test(`on a TLS listener (${server}) an ambiguous Host is refused too`, () =>
    ambiguousHostsOverTls(setting!));
}

async function ambiguousHostsOverTls(setting: string) {
  const dir = await Deno.makeTempDir({ prefix: "gw-host-tls-" });
  try {
    const { cert, key } = await selfSignedCert(dir);
    const listeners = `listeners:
  - { name: public, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}${setting} } }`;
    const caCerts = [await Deno.readTextFile(cert)];
    await withRig(vhosts, async ({ g, up }) => {
      const port = Number(new URL(g.url()).port);
      const exchange = async (head: string[]) => {
        const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts });
        await writeAllTo(conn, new TextEncoder().encode(head.join("\r\n") + "\r\n\r\n"));
        return parseResponse((await readUntilClose(conn, 5000)).text);
      };
      // A target naming another host than Host (the route would follow the target).
      for (
        const [target, host] of [...AMBIGUOUS, ["http://admin.example.com/x", "public.example"]]
      ) {
        const res = await exchange(get(target!, host!));
        // The runtime's own parser refuses some of them first, with its bare 400.
        assertEquals(res.status, 400, `${target} / Host: ${host}: ${res.raw}`);
      }
      assertEquals(up.received.length, 0, "none of them reached the upstream");
      const ok = await exchange(get("/x", "public.example"));
      assertEquals(ok.status, 200, ok.raw);
      assertEquals(up.received[0]!.headers.get("host"), "public.example");
    }, { listeners });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a host with a trailing dot is the same host: routed to its exact or wildcard route", async () => {
  await withRig(vhosts, async ({ g, up }) => {
    const cases: [string, string][] = [
      ["/x", "admin.example.com."],
      ["/x", "ADMIN.example.com.:8080"],
      ["http://admin.example.com./x", "admin.example.com"],
      ["/x", "eu.tenants.example."],
      ["/x", "fqdn.example"], // configured with its dot
    ];
    for (const [target, host] of cases) {
      const res = await rawRequest(g.url(), get(target, host));
      assertEquals(res.status, 401, `${target} / Host: ${host}: ${res.raw}`);
      assertEquals(JSON.parse(res.body).error.code, "missing_credentials");
    }
    assertEquals(up.received.length, 0);
    const keyed = await rawRequest(g.url(), [
      ...get("/x", "admin.example.com."),
      "X-API-Key: secret-alice",
    ]);
    assertEquals(keyed.status, 200, keyed.raw);
    // Only one dot: "admin.example.com.." is another name (and no route's).
    assertEquals((await rawRequest(g.url(), get("/x", "admin.example.com.."))).status, 200);
  });
});

Deno.test("an HTTP/2 client's :authority is the Host the upstream gets, as an HTTP/1.1 client's Host is", async () => {
  // The runtime lists no Host for an HTTP/2 request: the route was chosen by its :authority,
  // but the upstream got the target's Host and no X-Forwarded-Host (RFC 9113 §8.3.1 has an
  // intermediary make Host from :authority).
  const dir = await Deno.makeTempDir({ prefix: "gw-host-h2-" });
  const up = startUpstream();
  try {
    const { cert, key } = await selfSignedCert(dir);
    const g = await startGateway(`listeners:
  - { name: h2, host: 127.0.0.1, port: 0, tls: { cert: ${cert}, key: ${key}, http2: true } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  vhosts: { targets: [ { url: "${up.url}" } ], preserve_host: true }
routes:
  - { name: local, match: { path: /, host: [localhost] }, upstream: vhosts }
`);
    try {
      const port = new URL(g.url()).port;
      for (const http2 of [false, true]) {
        const client = Deno.createHttpClient({
          caCerts: [await Deno.readTextFile(cert)],
          http1: !http2,
          http2,
        });
        try {
          const res = await fetch(`https://localhost:${port}/x`, { client });
          const seen = (await res.json()).headers;
          assertEquals(
            [res.status, seen["host"], seen["x-forwarded-host"]],
            [200, `localhost:${port}`, `localhost:${port}`],
            http2 ? "HTTP/2" : "HTTP/1.1",
          );
        } finally {
          client.close();
        }
      }
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
