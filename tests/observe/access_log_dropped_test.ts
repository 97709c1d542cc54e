/**
 * `gateway_access_log_dropped_lines_total` is a counter: it keeps the lines a
 * destination dropped when a reload moves the log elsewhere, also while the
 * old destination is still being flushed and closed.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { Gateway } from "../../lib/server/gateway.ts";
import { silentLogger } from "../../lib/observe/logger.ts";
import { parsePromText, sampleValue } from "./prom_text.ts";

function config(upstream: string, accessLog: string): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
observe: { access_log: { ${accessLog}, flush_ms: 10 } }
upstreams: { up: { targets: [ { url: "${upstream}" } ] } }
routes: [ { name: all, match: { path: / }, upstream: up } ]
`;
}

Deno.test("access log: lines dropped by a destination a reload replaced stay counted while it closes", async () => {
  const up = startUpstream(() => new Response("ok"));
  const dir = await Deno.makeTempDir({ prefix: "gw-dropped-" });
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(file, config(up.url, "path: stdout"));
  // Standard output that fails its first write, then hangs on the next until released.
  let writes = 0;
  const hung = Promise.withResolvers<number>();
  const stdout = {
    write: (p: Uint8Array) => {
      writes++;
      if (writes === 1) return Promise.reject(new Error("EIO"));
      return writes === 2 ? hung.promise.then(() => p.length) : Promise.resolve(p.length);
    },
  };
  const gw = await Gateway.start({ configFile: file, logger: silentLogger, stdout });
  const admin = gw.addresses().admin;
  const dropped = async () =>
    sampleValue(
      parsePromText(await (await fetch(`${admin}/metrics`)).text()),
      "gateway_access_log_dropped_lines_total",
    );
  const request = async () => await (await fetch(`${gw.addresses().public}/`)).text();
  const until = async (done: () => boolean) => {
    for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    await request();
    await until(() => writes >= 1);
    assertEquals(await dropped(), 1);
    await request();
    await until(() => writes >= 2); // the second line's write hangs
    await Deno.writeTextFile(file, config(up.url, "path: access.log"));
    assertEquals((await gw.reload()).ok, true);
    // The stdout sink is closing, its write still hanging: its dropped line is still counted.
    assertEquals(await dropped(), 1);
    hung.resolve(0);
  } finally {
    hung.resolve(0);
    await gw.shutdown();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
