/**
 * SIGTERM and the client connections open at the time: idle kept-alive ones are
 * closed at once, a busy one gets its answer with `Connection: close`, and a
 * request stuck past `drain_timeout_s` does not hold the exit.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { freePorts } from "../helpers/ports.ts";
import { spawnGateway } from "../helpers/process.ts";
import { readOneResponse } from "../helpers/raw.ts";

function config(port: number, adminPort: number, upstream: string, drainS: number): string {
  return `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: ${drainS}, config_watch: { enabled: false } }
upstreams: { a: { targets: [ { url: "${upstream}" } ], timeout: { first_byte_ms: 600000, request_ms: 600000 } } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`;
}

const enc = new TextEncoder();

/** Resolves when the peer closes `conn` (or resets it). */
async function closedByPeer(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(1024);
  while (await conn.read(buf).catch(() => null) !== null);
}

async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const get = (path: string) => enc.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);

Deno.test("drain: idle kept-alive connections close at once, a busy one is answered with Connection: close", async () => {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      arrived.resolve();
      await release.promise;
    }
    return new Response("done");
  });
  const dir = await Deno.makeTempDir({ prefix: "gw-drain-conns-" });
  const [port, adminPort] = freePorts(2);
  await Deno.writeTextFile(`${dir}/gateway.yaml`, config(port!, adminPort!, up.url, 20));
  const gw = await spawnGateway(`${dir}/gateway.yaml`, `http://127.0.0.1:${adminPort}/readyz`, [
    "--workers",
    "1",
  ]);
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: port! });
  const busy = await Deno.connect({ hostname: "127.0.0.1", port: port! });
  try {
    await idle.write(get("/fast"));
    assertMatch(await readOneResponse(idle), /^HTTP\/1\.1 200/);
    await busy.write(get("/fast"));
    assertMatch(await readOneResponse(busy), /^HTTP\/1\.1 200/);
    await busy.write(get("/slow"));
    await arrived.promise;
    gw.child.kill("SIGTERM");
    await gw.logged(/"draining"/);
    // Closed by the drain, not kept until the process exits with the slow request.
    await within(5_000, "the idle connection to be closed", closedByPeer(idle));
    release.resolve();
    const answer = await within(10_000, "the busy connection's answer", readOneResponse(busy));
    assertMatch(answer, /^HTTP\/1\.1 200/);
    assertMatch(answer, /\r\nconnection: close\r\n/i);
    assertOk(answer.endsWith("done"), answer);
    await within(5_000, "the busy connection to be closed", closedByPeer(busy));
    assertEquals(await gw.exited(), 0);
  } finally {
    release.resolve();
    idle.close();
    busy.close();
    await gw.stop("SIGKILL");
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("drain: a request stuck past drain_timeout_s does not hold the exit", async () => {
  const arrived = Promise.withResolvers<void>();
  const never = Promise.withResolvers<Response>();
  const up = startUpstream(() => {
    arrived.resolve();
    return never.promise;
  });
  const dir = await Deno.makeTempDir({ prefix: "gw-drain-stuck-" });
  const [port, adminPort] = freePorts(2);
  await Deno.writeTextFile(`${dir}/gateway.yaml`, config(port!, adminPort!, up.url, 1));
  const gw = await spawnGateway(`${dir}/gateway.yaml`, `http://127.0.0.1:${adminPort}/readyz`, [
    "--workers",
    "1",
  ]);
  try {
    const stuck = fetch(`http://127.0.0.1:${port}/stuck`).then((r) => r.text()).catch(() => "");
    await arrived.promise;
    gw.child.kill("SIGTERM");
    assertEquals(await within(15_000, "the exit", gw.exited()), 0);
    await gw.logged(/drain deadline passed/);
    await stuck;
  } finally {
    never.resolve(new Response("late"));
    await gw.stop("SIGKILL");
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

for (const workers of ["1", "2"]) {
  Deno.test(`drain: a request head still arriving on the admin listener does not hold the exit (--workers ${workers})`, async () => {
    const up = startUpstream();
    const dir = await Deno.makeTempDir({ prefix: "gw-drain-admin-" });
    const [port, adminPort] = freePorts(2);
    await Deno.writeTextFile(`${dir}/gateway.yaml`, config(port!, adminPort!, up.url, 1));
    const gw = await spawnGateway(`${dir}/gateway.yaml`, `http://127.0.0.1:${adminPort}/readyz`, [
      "--workers",
      workers,
    ]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: adminPort! });
    try {
      // Half a head: the admin listener's header timeout (30 s) is what would end it.
      await conn.write(enc.encode("GET /metrics HTTP/1.1\r\n"));
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      gw.child.kill("SIGTERM");
      assertEquals(await within(10_000, "the exit", gw.exited()), 0);
      assertOk(Date.now() - t0 < 5_000, `the exit took ${Date.now() - t0} ms`);
    } finally {
      conn.close();
      await gw.stop("SIGKILL");
      await up.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
