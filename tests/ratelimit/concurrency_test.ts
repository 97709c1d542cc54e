/**
 * Exactness under concurrency, through real listeners: 500 requests at once
 * against a limit of 100 admit exactly 100, with the memory store in one
 * gateway, and with the Redis store shared by three gateway processes.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";
import { freePort } from "../helpers/ports.ts";
import { V8_FLAGS_ARG } from "../../lib/cli/v8_flags.ts";
import { EXACT_LIMITS as LIMITS, exactLimitRoutes as routes } from "./helpers.ts";

/** Fires `n` requests at once, spread over the base URLs; counts statuses. */
async function burst(bases: string[], path: string, n: number): Promise<Map<number, number>> {
  const statuses = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await fetch(`${bases[i % bases.length]}${path}`);
      await res.body?.cancel();
      return res.status;
    }),
  );
  const counts = new Map<number, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return counts;
}

Deno.test("memory store: 500 concurrent requests against a limit of 100 admit exactly 100", async () => {
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(routes(up.url)));
  try {
    for (const [i, limit] of LIMITS.entries()) {
      const counts = await burst([g.url()], `/r${i}`, 500);
      assertEquals(Object.fromEntries(counts), { 200: 100, 429: 400 }, limit);
    }
    assertEquals(up.received.length, 100 * LIMITS.length);
  } finally {
    await g.close();
    await up.close();
  }
});

interface GatewayProcess {
  url: string;
  child: Deno.ChildProcess;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** A gateway as its own process (`deno run main.ts`), ready when its admin answers. */
async function spawnGateway(dir: string, name: string, config: string): Promise<GatewayProcess> {
  const port = freePort();
  const admin = freePort();
  const file = `${dir}/${name}.yaml`;
  await Deno.writeTextFile(
    file,
    `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
observe: { access_log: { enabled: false } }
${config}`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    // One isolate per process: three processes stand for three instances.
    args: ["run", "-A", V8_FLAGS_ARG, MAIN, "--config", file, "--workers", "1"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`);
      await res.body?.cancel();
      if (res.ok) return { url: `http://127.0.0.1:${port}`, child };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`gateway ${name} did not start`);
}

Deno.test("redis store: three gateway processes sharing one redis-server admit exactly 100 of 500", async () => {
  const redis = await startRedis();
  const up = startUpstream(() => new Response("ok"));
  const dir = await Deno.makeTempDir({ prefix: "gw-rl-" });
  const gateways: GatewayProcess[] = [];
  try {
    // A generous timeout: this is about exactness, on a machine shared with other test runs.
    const config = `store:
  kind: redis
  redis: { url: "${redis.url}", on_error: deny, timeout_ms: 5000 }
${routes(up.url)}`;
    gateways.push(
      ...await Promise.all(["g1", "g2", "g3"].map((n) => spawnGateway(dir, n, config))),
    );
    const bases = gateways.map((g) => g.url);
    for (const [i, limit] of LIMITS.entries()) {
      const counts = await burst(bases, `/r${i}`, 500);
      assertEquals(Object.fromEntries(counts), { 200: 100, 429: 400 }, limit);
    }
    assertEquals(up.received.length, 100 * LIMITS.length);
  } finally {
    for (const g of gateways) {
      g.child.kill("SIGTERM");
      await g.child.status;
    }
    await Deno.remove(dir, { recursive: true });
    await up.close();
    await redis.close();
  }
});
