/**
 * Signals on a real gateway process: SIGHUP reloads, SIGUSR1 reopens the access
 * log, SIGTERM drains (a second one too).
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { freePorts } from "../helpers/ports.ts";
import { spawnGateway } from "../helpers/process.ts";
import { startGatewayProcess } from "./gateway_process.ts";

Deno.test("signals: SIGHUP reloads the config, SIGUSR1 reopens the access log, SIGTERM exits 0", async () => {
  const a = startUpstream(() => new Response("A"));
  const b = startUpstream(() => new Response("B"));
  const config = (port: number, adminPort: number, target: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
observe: { access_log: { path: access.log, flush_ms: 20 } }
upstreams: { a: { targets: [ { url: "${a.url}" } ] }, b: { targets: [ { url: "${b.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: ${target} } ]
`;
  let ports: [number, number] = [0, 0];
  const gw = await startGatewayProcess((port, adminPort) => {
    ports = [port, adminPort];
    return config(port, adminPort, "a");
  });
  const get = async () => await (await fetch(`${gw.url}/x`)).text();
  const settle = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 200; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  try {
    assertEquals(await get(), "A");
    await Deno.writeTextFile(gw.file, config(...ports, "b"));
    gw.child.kill("SIGHUP");
    await settle("SIGHUP to reload", async () => (await get()) === "B");

    const lines = async (name: string) =>
      (await Deno.readTextFile(`${gw.dir}/${name}`).catch(() => "")).trim().split("\n")
        .filter(Boolean).length;
    await settle("the access log to be written", async () => (await lines("access.log")) >= 2);
    await Deno.rename(`${gw.dir}/access.log`, `${gw.dir}/access.log.1`);
    gw.child.kill("SIGUSR1");
    await settle("SIGUSR1 to reopen the log", async () => {
      await get();
      return (await lines("access.log")) >= 1;
    });

    gw.child.kill("SIGTERM");
    assertEquals((await gw.child.status).code, 0);
  } finally {
    await gw.close();
    await a.close();
    await b.close();
  }
});

for (const workers of [1, 2]) {
  Deno.test(`signals: a second SIGTERM still drains (--workers ${workers})`, async () => {
    const arrived = Promise.withResolvers<void>();
    const up = startUpstream(async () => {
      arrived.resolve();
      await new Promise((r) => setTimeout(r, 1_500));
      return new Response("slow");
    });
    const dir = await Deno.makeTempDir({ prefix: "gw-sigterm-" });
    const [port, adminPort] = freePorts(2);
    await Deno.writeTextFile(
      `${dir}/gateway.yaml`,
      `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: 5, config_watch: { enabled: false } }
observe: { access_log: { path: access.log, flush_ms: 60000 } }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`,
    );
    const gw = await spawnGateway(
      `${dir}/gateway.yaml`,
      `http://127.0.0.1:${adminPort}/readyz`,
      ["--workers", String(workers)],
    );
    try {
      const answer = fetch(`http://127.0.0.1:${port}/slow`).then(async (r) => {
        const text = await r.text();
        return { status: r.status, text, at: performance.now() };
      });
      await arrived.promise;
      gw.child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 100));
      gw.child.kill("SIGTERM");
      const done = await answer;
      const code = await gw.exited();
      const exitedAt = performance.now();
      assertEquals([done.status, done.text, code], [200, "slow", 0]);
      assertOk(exitedAt >= done.at);
      assertOk(gw.log.some((l) => JSON.parse(l).msg === "stopped"));
      const logged = await Deno.readTextFile(`${dir}/access.log`);
      assertOk(logged.includes('"path":"/slow"'));
    } finally {
      await gw.stop("SIGKILL");
      await up.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("signals: SIGTERM while the first plan builds stops the gateway once up, exit 0", async () => {
  const up = startUpstream(() => new Response("ok"));
  const dir = await Deno.makeTempDir({ prefix: "gw-sigterm-start-" });
  const fifo = `${dir}/access.fifo`;
  assertOk((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo failed");
  const [port, adminPort] = freePorts(2);
  await Deno.writeTextFile(
    `${dir}/gateway.yaml`,
    `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { config_watch: { enabled: false } }
observe: { access_log: { path: access.fifo } }
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`,
  );
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "--config", `${dir}/gateway.yaml`, "--workers", "1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let reader: Deno.FsFile | null = null;
  try {
    // Opening a FIFO for writing waits for a reader: the plan build stalls there.
    let starting = false;
    for (let i = 0; i < 300 && !starting; i++) {
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => null);
      starting = r !== null && (await r.json()).status === "starting";
      if (!starting) await new Promise((res) => setTimeout(res, 50));
    }
    assertOk(starting, "the gateway did not report starting");
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    // Read and write, so that opening does not wait for a writer the old code had killed.
    reader = await Deno.open(fifo, { read: true, write: true });
    const status = await child.status;
    assertEquals([status.code, status.signal], [0, null]);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    reader?.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
