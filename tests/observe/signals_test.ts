/** Signals on a real gateway process: SIGHUP reloads, SIGUSR1 reopens the access log, SIGTERM drains. */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
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
