/**
 * `listeners[].max_connections`: a listener holding that many client
 * connections closes the next one as soon as it accepts it, and counts it in
 * `gateway_listener_connections_refused_total`; once one closes, a new one is
 * served. The gateway's own HTTP/1.1 server, the node:https server of TLS 1.3
 * and mTLS listeners, and the PROXY protocol front each enforce it.
 */
import { assertEquals, assertOk, within } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { readOneResponse } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const REQUEST = new TextEncoder().encode("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n");

/** Sends a request on `conn` and reads the answer: its status, or "closed" if none came. */
async function ask(conn: Deno.Conn): Promise<number | "closed"> {
  try {
    await writeAllTo(conn, REQUEST);
    const answer = await readOneResponse(conn);
    return answer === "" ? "closed" : Number(answer.slice(9, 12));
  } catch {
    return "closed";
  }
}

Deno.test("max_connections: each kind of listener closes the connection over its cap, and serves once one ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-max-conns-" });
  const up = startUpstream(() => new Response("ok"));
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
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
  const port = (name: string) => Number(new URL(g.url(name)).port);
  const connectTo: Record<string, () => Promise<Deno.Conn>> = {
    plain: () => Deno.connect({ hostname: "127.0.0.1", port: port("plain") }),
    tls13: () => Deno.connectTls({ hostname: "localhost", port: port("tls13"), caCerts }),
    proxied: async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: port("proxied") });
      await writeAllTo(c, new TextEncoder().encode("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"));
      return c;
    },
  };
  const open: Deno.Conn[] = [];
  try {
    for (const [name, connect] of Object.entries(connectTo)) {
      const held = [await connect(), await connect()];
      open.push(...held);
      for (const c of held) assertEquals(await ask(c), 200, `${name}: served under the cap`);

      const over = await connect();
      open.push(over);
      assertEquals(await within(5_000, ask(over)), "closed", `${name}: the third is closed`);

      closeQuietly(held[0]!);
      // The listener counts the closed one out once it has read its end.
      let again: number | "closed" = "closed";
      for (let i = 0; i < 50 && again !== 200; i++) {
        const c = await connect();
        open.push(c);
        again = await within(5_000, ask(c)) as number | "closed";
        if (again !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      assertEquals(again, 200, `${name}: served again once one ended`);
      assertEquals(await ask(held[1]!), 200, `${name}: the kept connection still serves`);
    }
    const metrics = await (await fetch(`${g.admin}/metrics`)).text();
    for (const name of Object.keys(connectTo)) {
      const m = new RegExp(
        `^gateway_listener_connections_refused_total\\{listener="${name}"\\} (\\d+)$`,
        "m",
      ).exec(metrics);
      assertOk(m !== null && Number(m[1]) >= 1, `${name} counted:\n${metrics}`);
    }
  } finally {
    for (const c of open) closeQuietly(c);
    await g.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
