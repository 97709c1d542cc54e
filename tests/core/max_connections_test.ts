/**
 * `listeners[].max_connections`: a listener holding that many client
 * connections closes its longest idle one to serve the next, and counts it in
 * `gateway_listener_connections_reclaimed_total`; with every one busy it
 * closes the next one as soon as it accepts it, counted in
 * `gateway_listener_connections_refused_total`. The gateway's own HTTP/1.1
 * server, the node:https server of TLS 1.3 and mTLS listeners, and the PROXY
 * protocol front each enforce it.
 */
import { assertEquals, assertOk, within } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { readOneResponse } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const request = (path: string) =>
  new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`);

/** Sends a request on `conn` and reads the answer: its status, or "closed" if none came. */
async function ask(conn: Deno.Conn, path = "/x"): Promise<number | "closed"> {
  try {
    await writeAllTo(conn, request(path));
    const answer = await readOneResponse(conn);
    return answer === "" ? "closed" : Number(answer.slice(9, 12));
  } catch {
    return "closed";
  }
}

/** One gateway with a listener of each kind, `max_connections: 2`; `connect` opens a client connection to one. */
async function gatewayOfEachKind(dir: string, upstream: string) {
  const { cert, key } = await selfSignedCert(dir);
  const caCerts = [await Deno.readTextFile(cert)];
  const g = await startGateway(`listeners:
  - { name: plain, host: 127.0.0.1, port: 0, max_connections: 2 }
  - { name: tls13, host: 127.0.0.1, port: 0, max_connections: 2, tls: { cert: ${cert}, key: ${key}, min_version: "1.3" } }
  - { name: proxied, host: 127.0.0.1, port: 0, max_connections: 2, proxy_protocol: true }
admin: { host: 127.0.0.1, port: 0 }
security: { trusted_proxies: [127.0.0.1/32] }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
  const port = (name: string) => Number(new URL(g.url(name)).port);
  const connect: Record<string, () => Promise<Deno.Conn>> = {
    plain: () => Deno.connect({ hostname: "127.0.0.1", port: port("plain") }),
    tls13: () => Deno.connectTls({ hostname: "localhost", port: port("tls13"), caCerts }),
    proxied: async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: port("proxied") });
      await writeAllTo(c, new TextEncoder().encode("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"));
      return c;
    },
  };
  return { g, connect };
}

/** The value of `name{listener="..."}` for each listener in the gateway's metrics. */
async function counts(admin: string, name: string): Promise<Record<string, number>> {
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(new RegExp(`^${name}\\{listener="(\\w+)"\\} (\\d+)$`, "gm"))) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

Deno.test("max_connections: each kind of listener closes its longest idle connection to serve a new one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-max-conns-" });
  const up = startUpstream(() => new Response("ok"));
  const { g, connect: connectTo } = await gatewayOfEachKind(dir, up.url);
  const open: Deno.Conn[] = [];
  try {
    for (const [name, connect] of Object.entries(connectTo)) {
      const held = [await connect(), await connect()];
      open.push(...held);
      // Both answered, so both wait for their next request: the first has waited longer.
      for (const c of held) assertEquals(await ask(c), 200, `${name}: served under the cap`);

      const next = await connect();
      open.push(next);
      assertEquals(await within(5_000, ask(next)), 200, `${name}: the third is served`);
      assertEquals(
        await within(5_000, ask(held[0]!)),
        "closed",
        `${name}: the longest idle closed`,
      );
      assertEquals(await ask(held[1]!), 200, `${name}: the other still serves`);
    }
    const reclaimed = await counts(g.admin, "gateway_listener_connections_reclaimed_total");
    const refused = await counts(g.admin, "gateway_listener_connections_refused_total");
    for (const name of Object.keys(connectTo)) {
      assertOk((reclaimed[name] ?? 0) >= 1, `${name}: reclaimed ${reclaimed[name]}`);
      assertEquals(refused[name] ?? 0, 0, `${name}: none refused`);
    }
  } finally {
    for (const c of open) closeQuietly(c);
    await g.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("max_connections: with every connection busy, each kind of listener closes the next at once, and serves once one is free", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-max-conns-" });
  let release = Promise.withResolvers<void>();
  let waiting = 0;
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      waiting++;
      await release.promise;
    }
    return new Response("ok");
  });
  const { g, connect: connectTo } = await gatewayOfEachKind(dir, up.url);
  const open: Deno.Conn[] = [];
  try {
    for (const [name, connect] of Object.entries(connectTo)) {
      const held = [await connect(), await connect()];
      open.push(...held);
      waiting = 0;
      const answers = held.map((c) => ask(c, "/slow"));
      for (let i = 0; i < 100 && waiting < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assertEquals(waiting, 2, `${name}: both requests reached the upstream`);

      const over = await connect();
      open.push(over);
      assertEquals(await within(5_000, ask(over)), "closed", `${name}: the third is closed`);

      release.resolve();
      assertEquals(await Promise.all(answers), [200, 200], `${name}: the busy ones answered`);
      release = Promise.withResolvers<void>();
      const again = await connect();
      open.push(again);
      assertEquals(await within(5_000, ask(again)), 200, `${name}: served once one is free`);
    }
    const refused = await counts(g.admin, "gateway_listener_connections_refused_total");
    for (const name of Object.keys(connectTo)) {
      assertOk((refused[name] ?? 0) >= 1, `${name}: refused ${refused[name]}`);
    }
  } finally {
    release.resolve();
    for (const c of open) closeQuietly(c);
    await g.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
