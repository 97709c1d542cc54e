/**
 * `--workers 2` with the memory cache, as a user runs it: each worker caches
 * the read, a write reaches one of them, and no connection, whichever worker
 * the kernel gives it, is answered the old resource after the write's answer.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { freePorts } from "../helpers/ports.ts";
import { spawnGateway } from "../helpers/process.ts";

/** A GET on a new connection, so that the kernel spreads them over the workers. */
async function freshGet(url: string): Promise<{ cache: string | null; v: number }> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const res = await fetch(url, { client });
    return { cache: res.headers.get("x-cache"), v: (await res.json()).v };
  } finally {
    client.close();
  }
}

Deno.test("--workers 2, memory cache: a write through one worker drops the read every worker cached", async () => {
  let version = 1;
  const up = startUpstream(async (req) => {
    if (req.method === "GET") return Response.json({ v: version });
    await req.body?.cancel();
    version++;
    return new Response(null, { status: 204 });
  });
  const gets = () => up.received.filter((r) => r.method === "GET").length;
  const dir = await Deno.makeTempDir({ prefix: "gw-cache-workers-" });
  const [port, admin] = freePorts(2) as [number, number];
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(
    file,
    `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
upstreams: { items: { targets: [ { url: "${up.url}" } ] } }
routes:
  - { name: read, match: { path: /items, methods: [GET] }, upstream: items, cache: { ttl_s: 300 } }
  - { name: write, match: { path: /items, methods: [PUT] }, upstream: items }
`,
  );
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
    timeoutMs: 30_000,
  });
  const url = `http://127.0.0.1:${port}/items/1`;
  try {
    // Until both workers hold the entry: each fetched it once.
    for (let i = 0; i < 200 && gets() < 2; i++) assertEquals((await freshGet(url)).v, 1);
    assertEquals(gets(), 2);
    for (let i = 0; i < 10; i++) assertEquals(await freshGet(url), { cache: "HIT", v: 1 });

    const put = await fetch(url, { method: "PUT", body: "{}" });
    assertEquals(put.status, 204);
    // Before, the worker that did not proxy the write served v1 until its TTL.
    const after = [];
    for (let i = 0; i < 20; i++) after.push((await freshGet(url)).v);
    assertEquals(after, new Array(20).fill(2));
    assertOk(gets() <= 4, `${gets()} GETs upstream: each worker refills once`);
  } finally {
    assertEquals(await gw.stop("SIGTERM"), 0);
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
