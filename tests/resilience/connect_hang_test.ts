/**
 * A target whose connects hang (its accept queue is full): the request
 * deadline bounds the connect, and least_conn counts a request that is still
 * connecting as in flight.
 */
import { assertEquals, assertError } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { until, upstreamView } from "./support.ts";

/** A listener that never accepts, its queue filled: a connect to it waits for the SYN's answer. */
async function hangingTarget(): Promise<{ url: string; close(): void }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const fillers = Array.from(
    { length: 3 },
    () => Deno.connect({ hostname: "127.0.0.1", port }).catch(() => null),
  );
  await new Promise((r) => setTimeout(r, 100));
  return {
    url: `http://127.0.0.1:${port}`,
    close() {
      listener.close();
      for (const f of fillers) f.then((c) => c?.close()).catch(() => {});
    },
  };
}

Deno.test("request_ms bounds the connect: a hanging connect ends at the request deadline", async () => {
  const hanging = await hangingTarget();
  const g = await startGateway(baseConfig(`
upstreams:
  bounded: { targets: [ { url: "${hanging.url}" } ], timeout: { connect_ms: 6000, request_ms: 300 } }
  connect_only: { targets: [ { url: "${hanging.url}" } ], timeout: { connect_ms: 3000 } }
routes:
  - { name: bounded, match: { path: /bounded }, upstream: bounded }
  - { name: connect_only, match: { path: /connect-only }, upstream: connect_only }
`));
  try {
    const order: string[] = [];
    const call = (path: string) =>
      fetch(`${g.url()}${path}`).then((res) => (order.push(path), res));
    const [bounded, connectOnly] = await Promise.all([call("/bounded"), call("/connect-only")]);
    await assertError(bounded, 504, "upstream_timeout");
    await assertError(connectOnly, 504, "upstream_timeout");
    // The 300 ms deadline ends the first before the second's 3 s connect timeout (it waited 6 s).
    assertEquals(order, ["/bounded", "/connect-only"]);
  } finally {
    await g.close();
    hanging.close();
  }
});

Deno.test("least_conn counts a request stuck connecting, and sends the others elsewhere", async () => {
  const hanging = await hangingTarget();
  const healthy = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(`
upstreams:
  lc:
    balance: least_conn
    targets: [ { url: "${hanging.url}" }, { url: "${healthy.url}" } ]
    # Long enough that the first request is still connecting while the others are sent,
    # however slowly a loaded machine sends them (1.5 s was not always).
    timeout: { connect_ms: 5000 }
routes:
  - { name: lc, match: { path: / }, upstream: lc }
`));
  try {
    // The first request goes to the first target and hangs connecting.
    const stuck = fetch(`${g.url()}/first`);
    await until(async () => (await upstreamView(g, "lc")).targets[0].in_flight === 1);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${g.url()}/next`);
      await res.body?.cancel();
      statuses.push(res.status);
    }
    // They alternated between the targets: every other one waited 5 s for a 504.
    assertEquals(statuses, [200, 200, 200, 200]);
    assertEquals(healthy.received.length, 4);
    await assertError(await stuck, 504, "upstream_timeout");
    assertEquals((await upstreamView(g, "lc")).targets[0].in_flight, 0);
  } finally {
    await g.close();
    hanging.close();
    await healthy.close();
  }
});
