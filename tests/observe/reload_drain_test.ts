/**
 * SIGTERM after reloads: a drain waits for every request the process is serving,
 * on listeners a reload moved as on the current ones, and a reload still
 * running when the drain starts opens nothing.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { freePorts } from "../helpers/ports.ts";
import { spawnGateway } from "../helpers/process.ts";

function config(port: number, adminPort: number, upstream: string, extra = ""): string {
  return `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: 10, config_watch: { enabled: false } }
${extra}
upstreams: { a: { targets: [ { url: "${upstream}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`;
}

/** Whether a fresh connection to `port` is answered. */
function answers(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/probe`).then(async (r) => {
    await r.body?.cancel();
    return true;
  }, () => false);
}

Deno.test("drain: a slow request on a listener a reload moved to another port still finishes", async () => {
  const arrived = Promise.withResolvers<void>();
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      arrived.resolve();
      await new Promise((r) => setTimeout(r, 1_500));
    }
    return new Response("done");
  });
  const dir = await Deno.makeTempDir({ prefix: "gw-reload-drain-" });
  const file = `${dir}/gateway.yaml`;
  const [first, second, adminPort] = freePorts(3);
  await Deno.writeTextFile(file, config(first!, adminPort!, up.url));
  const gw = await spawnGateway(file, `http://127.0.0.1:${adminPort}/readyz`, ["--workers", "1"]);
  try {
    const slow = fetch(`http://127.0.0.1:${first}/slow`).then(async (
      r,
    ) => [r.status, await r.text()]);
    await arrived.promise;
    await Deno.writeTextFile(file, config(second!, adminPort!, up.url));
    const reload = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: "POST" });
    assertEquals(reload.status, 200);
    await reload.body?.cancel();
    assertOk(await answers(second!), "the moved listener does not answer");
    gw.child.kill("SIGTERM");
    assertEquals(await slow, [200, "done"]);
    assertEquals(await gw.exited(), 0);
  } finally {
    await gw.stop("SIGKILL");
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("drain: a reload still building when SIGTERM comes opens no listener again", async () => {
  const arrived = Promise.withResolvers<void>();
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      arrived.resolve();
      await new Promise((r) => setTimeout(r, 2_000));
    }
    return new Response("done");
  });
  const dir = await Deno.makeTempDir({ prefix: "gw-reload-drain-" });
  const file = `${dir}/gateway.yaml`;
  const fifo = `${dir}/access.fifo`;
  assertOk((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo failed");
  const [port, adminPort] = freePorts(2);
  await Deno.writeTextFile(file, config(port!, adminPort!, up.url));
  const gw = await spawnGateway(file, `http://127.0.0.1:${adminPort}/readyz`, ["--workers", "1"]);
  let reader: Deno.FsFile | null = null;
  try {
    const slow = fetch(`http://127.0.0.1:${port}/slow`).then(async (
      r,
    ) => [r.status, await r.text()]);
    await arrived.promise;
    // Opening a FIFO for writing waits for a reader: the reload's plan build stalls there.
    const fifoLog = "observe: { access_log: { path: access.fifo } }";
    await Deno.writeTextFile(file, config(port!, adminPort!, up.url, fifoLog));
    gw.child.kill("SIGHUP");
    await new Promise((r) => setTimeout(r, 300));
    gw.child.kill("SIGTERM");
    await gw.logged(/"draining"/);
    reader = await Deno.open(fifo, { read: true });
    const [outcome] = await gw.logged(/"msg":"config reload/);
    assertMatch(outcome!, /config reload dropped: the gateway is shutting down/);
    // The slow request keeps the drain going: the port must stay closed meanwhile.
    assertEquals(await answers(port!), false, "a listener was opened again during the drain");
    assertEquals(await slow, [200, "done"]);
    assertEquals(await gw.exited(), 0);
  } finally {
    reader?.close();
    await gw.stop("SIGKILL");
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
