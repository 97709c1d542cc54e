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
import { startUpstream } from "../helpers/upstream.ts";
import { gatewayOfEachKind, type ListenerKind } from "../helpers/listener_kinds.ts";
import { readOneResponse } from "../helpers/raw.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

const request = (path: string) =>
  new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`);

const KINDS: ListenerKind[] = ["plain", "tls13", "proxied"];

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

/** The value of `name{listener="..."}` for each listener in a metrics text. */
function counts(metrics: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(new RegExp(`^${name}\\{listener="(\\w+)"\\} (\\d+)$`, "gm"))) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * A gateway with a listener of each kind, `max_connections: 2`, in front of an
 * upstream answering with `handler`; `fn` runs for each kind with a connector
 * whose connections are closed afterwards. Returns the gateway's metrics text.
 */
async function atEachKind(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (name: string, connect: () => Promise<Deno.Conn>) => Promise<void>,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gw-max-conns-" });
  const up = startUpstream(handler);
  const { g, connect } = await gatewayOfEachKind(dir, up.url, KINDS, "max_connections: 2");
  const open: Deno.Conn[] = [];
  try {
    for (const [name, opener] of Object.entries(connect)) {
      await fn(name, async () => {
        const c = await opener();
        open.push(c);
        return c;
      });
    }
    return await (await fetch(`${g.admin}/metrics`)).text();
  } finally {
    for (const c of open) closeQuietly(c);
    await g.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("max_connections: each kind of listener closes its longest idle connection to serve a new one", async () => {
  const metrics = await atEachKind(() => new Response("ok"), async (name, connect) => {
    const held = [await connect(), await connect()];
    // Both answered, so both wait for their next request: the first has waited longer.
    for (const c of held) assertEquals(await ask(c), 200, `${name}: served under the cap`);

    const next = await connect();
    assertEquals(await within(5_000, ask(next)), 200, `${name}: the third is served`);
    assertEquals(await within(5_000, ask(held[0]!)), "closed", `${name}: the longest idle closed`);
    assertEquals(await ask(held[1]!), 200, `${name}: the other still serves`);
  });
  const reclaimed = counts(metrics, "gateway_listener_connections_reclaimed_total");
  const refused = counts(metrics, "gateway_listener_connections_refused_total");
  for (const name of KINDS) {
    assertOk((reclaimed[name] ?? 0) >= 1, `${name}: reclaimed ${reclaimed[name]}`);
    assertEquals(refused[name] ?? 0, 0, `${name}: none refused`);
  }
});

Deno.test("max_connections: with every connection busy, each kind of listener closes the next at once, and serves once one is free", async () => {
  let release = Promise.withResolvers<void>();
  let waiting = 0;
  const slow = async (req: Request) => {
    if (new URL(req.url).pathname === "/slow") {
      waiting++;
      await release.promise;
    }
    return new Response("ok");
  };
  try {
    const metrics = await atEachKind(slow, async (name, connect) => {
      const held = [await connect(), await connect()];
      waiting = 0;
      const answers = held.map((c) => ask(c, "/slow"));
      for (let i = 0; i < 100 && waiting < 2; i++) await new Promise((r) => setTimeout(r, 20));
      assertEquals(waiting, 2, `${name}: both requests reached the upstream`);

      const over = await connect();
      assertEquals(await within(5_000, ask(over)), "closed", `${name}: the third is closed`);

      release.resolve();
      assertEquals(await Promise.all(answers), [200, 200], `${name}: the busy ones answered`);
      release = Promise.withResolvers<void>();
      const again = await connect();
      assertEquals(await within(5_000, ask(again)), 200, `${name}: served once one is free`);
    });
    const refused = counts(metrics, "gateway_listener_connections_refused_total");
    for (const name of KINDS) {
      assertOk((refused[name] ?? 0) >= 1, `${name}: refused ${refused[name]}`);
    }
  } finally {
    release.resolve();
  }
});
