/**
 * Rate-limit benchmarks, run by `deno task bench` after the throughput table
 * (or alone: `deno run -A bench/ratelimit.ts [--seconds 1] [--keys 1000000]`):
 *
 * - decisions per second of each algorithm against the memory store, in one
 *   process (1,000 client keys, every decision admitted and kept);
 * - decisions per second against a local redis-server from one process, with
 *   256 decisions in flight (one EVALSHA each);
 * - 1,000,000 distinct client keys against the memory store (max_keys 100,000):
 *   keys held and heap growth; then a gateway process flooded through HTTP with
 *   distinct keys by wrk, its RSS beside the same gateway before the flood.
 *
 * Gateway throughput with a limit on every request, beside routing-only, is in
 * the main table (bench/configs.ts).
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryLimiterStore } from "../lib/store/memory_limiter.ts";
import { RedisLimiterStore, whenReady } from "../lib/store/redis_limiter.ts";
import type { StoredLimit } from "../lib/store/limiter_store.ts";
import { RedisConnections } from "../lib/store/redis.ts";
import { redisSchema } from "../lib/store/schema.ts";
import { type AlgorithmSpec, compileAlgorithm } from "../lib/ratelimit/algorithms/index.ts";
import { silentLogger } from "../lib/observe/logger.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const UPSTREAM_PORT = 9001;

const BIG = 1e9;
const ALGORITHMS: [string, AlgorithmSpec][] = [
  ["token_bucket", { kind: "token_bucket", rate: BIG, perMs: 1000, burst: BIG }],
  [
    "leaky_bucket police",
    { kind: "leaky_bucket", mode: "police", rate: BIG, perMs: 1000, capacity: BIG },
  ],
  [
    "leaky_bucket shape",
    { kind: "leaky_bucket", mode: "shape", rate: BIG, perMs: 1000, capacity: BIG },
  ],
  ["fixed_window", { kind: "fixed_window", limit: BIG, window: { every: 60_000 } }],
  ["sliding_window", { kind: "sliding_window", limit: BIG, perMs: 60_000 }],
  ["sliding_log (limit 100, 1s)", { kind: "sliding_log", limit: 100, perMs: 1000 }],
];

const limitOf = (spec: AlgorithmSpec): StoredLimit => ({
  id: "bench",
  algorithm: compileAlgorithm(spec),
  cost: 1,
  shadow: false,
});

const clientKeys = (n: number) =>
  Array.from({ length: n }, (_, i) => [`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`]);

/** Decisions per second, best of three runs of `seconds` (this machine is shared and noisy). */
function memoryRate(spec: AlgorithmSpec, seconds: number): number {
  const limits = [limitOf(spec)];
  const keys = clientKeys(1000);
  let best = 0;
  for (let run = 0; run < 3; run++) {
    const store = new MemoryLimiterStore();
    const t0 = performance.now();
    let n = 0;
    const start = Date.now();
    while (performance.now() - t0 < seconds * 1000) {
      // Time moves on as it would: a millisecond per ~1000 decisions.
      for (let i = 0; i < 1000; i++) store.decide(limits, keys[i]!, start + (n >> 10));
      n += 1000;
    }
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** Decisions per second with 256 in flight, after a warm-up of the same length. */
async function redisRate(
  store: RedisLimiterStore,
  spec: AlgorithmSpec,
  seconds: number,
): Promise<number> {
  const limits = [limitOf(spec)];
  const keys = clientKeys(1000);
  const run = async () => {
    let n = 0;
    const until = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 256 }, async (_, w) => {
      while (performance.now() < until) {
        await store.decide(limits, keys[(n + w) % 1000]!, Date.now());
        n++;
      }
    }));
    return n / ((performance.now() - t0) / 1000);
  };
  await run();
  return await run();
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function withRedis<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    return await fn(`redis://127.0.0.1:${port}`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

function memoryFlood(keys: number): { held: number; heapMb: number; ms: number } {
  const store = new MemoryLimiterStore({ maxKeys: 100_000 });
  const limits = [limitOf(ALGORITHMS[0]![1])];
  const heap0 = Deno.memoryUsage().heapUsed;
  const t0 = performance.now();
  const now = Date.now();
  const key = [""];
  for (let i = 0; i < keys; i++) {
    key[0] = `client-${i}`;
    store.decide(limits, key, now);
  }
  return {
    held: store.size,
    heapMb: (Deno.memoryUsage().heapUsed - heap0) / 2 ** 20,
    ms: performance.now() - t0,
  };
}

async function rssMb(pid: number): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]) / 1024;
}

async function answers(url: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(url)).body?.cancel();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return false;
}

/** A gateway process flooded with distinct `X-Client` keys by wrk; its RSS before and after. */
async function gatewayFlood(seconds: number) {
  const dir = await Deno.makeTempDir({ prefix: "gw-rl-bench-" });
  const children: Deno.ChildProcess[] = [];
  try {
    if (!await answers(`http://127.0.0.1:${UPSTREAM_PORT}/`)) {
      children.push(
        new Deno.Command("nginx", {
          args: ["-c", join(ROOT, "..", "shared", "bench", "nginx-upstream.conf")],
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
      await answers(`http://127.0.0.1:${UPSTREAM_PORT}/`);
    }
    const port = freePort();
    const file = join(dir, "gateway.yaml");
    await Deno.writeTextFile(
      file,
      `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
observe: { access_log: { enabled: false } }
store: { kind: memory, memory: { max_keys: 100000 } }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:${UPSTREAM_PORT}" } ] }
routes:
  - name: users
    match: { path: /api/users }
    upstream: users
    rate_limit: { algorithm: token_bucket, rate: 10, per: 1s, burst: 10, key: "header:X-Client" }
`,
    );
    const gw = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "main.ts"), "--config", file, "--log-level", "warn"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.push(gw);
    const url = `http://127.0.0.1:${port}/api/users/42`;
    if (!await answers(url)) throw new Error("the gateway did not start");
    // Warm up with a few keys so that the "before" RSS is a running gateway's.
    await wrk(url, join(dir, "warm.lua"), 1000, 2);
    const before = await rssMb(gw.pid);
    const sent = await wrk(url, join(dir, "flood.lua"), null, seconds);
    return { sent, before, after: await rssMb(gw.pid) };
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // exited already
      }
    }
    await Promise.all(children.map((c) => c.status));
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs wrk with a script that sends a new X-Client value on every request, or
 * cycles through `cycle` values; returns the number of requests sent.
 */
async function wrk(url: string, script: string, cycle: number | null, seconds: number) {
  const value = cycle === null ? "n" : `(n % ${cycle})`;
  await Deno.writeTextFile(
    script,
    `local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, { ["X-Client"] = "client-" .. ${value} })
end`,
  );
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c64", `-d${seconds}s`, "-s", script, url],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
}

export async function rateLimitBench(
  seconds = 1,
  floodKeys = 1_000_000,
  floodSeconds = 30,
): Promise<string> {
  const lines = [
    "| rate limiting | decisions/s |",
    "|---|---:|",
  ];
  for (const [name, spec] of ALGORITHMS) {
    const rate = memoryRate(spec, seconds);
    lines.push(`| memory store: ${name} | ${Math.round(rate).toLocaleString("en")} |`);
    console.error(`memory ${name}: ${Math.round(rate)}/s`);
  }
  await withRedis(async (url) => {
    const connections = new RedisConnections(silentLogger);
    try {
      const config = redisSchema.parse({ url, timeout_ms: 2000 });
      const client = connections.get(config);
      if (!await whenReady(client, 5000)) throw new Error("redis-server did not start");
      const store = new RedisLimiterStore(client, config, connections);
      for (const [name, spec] of [ALGORITHMS[0]!, ALGORITHMS[4]!]) {
        const rate = await redisRate(store, spec, seconds * 3);
        lines.push(
          `| redis store (one process, 256 in flight): ${name} | ${
            Math.round(rate).toLocaleString("en")
          } |`,
        );
        console.error(`redis ${name}: ${Math.round(rate)}/s`);
      }
    } finally {
      connections.closeAll();
    }
  });
  const flood = memoryFlood(floodKeys);
  const gateway = await gatewayFlood(floodSeconds);
  const out = [
    lines.join("\n"),
    "",
    `Memory store, ${floodKeys.toLocaleString("en")} distinct keys, max_keys 100,000: ` +
    `${flood.held.toLocaleString("en")} keys held, heap +${flood.heapMb.toFixed(0)} MB ` +
    `(${(floodKeys / flood.ms * 1000 / 1e6).toFixed(2)} M decisions/s).`,
    `Gateway process, max_keys 100,000, flooded by wrk for ${floodSeconds} s, a new X-Client ` +
    `key on every request: ${gateway.sent.toLocaleString("en")} keys; RSS ${
      gateway.before.toFixed(0)
    } MB before, ` +
    `${gateway.after.toFixed(0)} MB after.`,
  ].join("\n");
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "1" },
      keys: { type: "string", default: "1000000" },
      "flood-seconds": { type: "string", default: "30" },
    },
  });
  const report = await rateLimitBench(
    Number(values.seconds),
    Number(values.keys),
    Number(values["flood-seconds"]),
  );
  console.log(report);
}
