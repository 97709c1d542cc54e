/**
 * Rate-limit benchmarks, run by `deno task bench` after the throughput table
 * (or alone: `deno run -A bench/ratelimit.ts [--seconds 1] [--keys 1000000]
 * [--flood-seconds 30]`; the gateway flood stops at `--keys` or `--flood-seconds`,
 * whichever comes first: a million keys through HTTP takes minutes here):
 *
 * - decisions per CPU-second of each algorithm against the memory store, in
 *   one process (1,000 client keys, every decision admitted and kept);
 * - the policy's own CPU cost per request (key, decision, RateLimit headers):
 *   steadier than comparing req/s on a shared machine;
 * - decisions per second against a local redis-server from one process, with
 *   256 decisions in flight (those that queue share script calls);
 * - 1,000,000 distinct client keys against the memory store (max_keys 100,000):
 *   keys held; then a gateway process (max_keys 20,000) flooded
 *   through HTTP by wrk with a new key on every request, its RSS sampled every
 *   10 s as the flood goes on: it levels off once the cap is reached.
 *
 * Gateway throughput with a limit on every request, beside routing-only, is in
 * the main table (bench/configs.ts).
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryLimiterStore } from "../lib/store/memory_limiter.ts";
import { RedisLimiterStore } from "../lib/store/redis_limiter.ts";
import type { StoredLimit } from "../lib/store/limiter_store.ts";
import { loadRedisClient, RedisConnections, whenReady } from "../lib/store/redis.ts";
import { V8_FLAGS_ARG } from "../lib/cli/v8_flags.ts";
import { redisSchema } from "../lib/store/schema.ts";
import { type AlgorithmSpec, compileAlgorithm } from "../lib/ratelimit/algorithms/index.ts";
import { compileRateLimit } from "../lib/ratelimit/limit.ts";
import { rateLimitPolicy } from "../lib/ratelimit/policy.ts";
import { rateLimitSchema } from "../lib/ratelimit/schema.ts";
import { RequestContext } from "../lib/core/context.ts";
import { incomingOf } from "../lib/server/incoming.ts";
import { systemClock } from "../lib/core/clock.ts";
import { parseTraceparent } from "../lib/observe/trace.ts";
import { HeaderEdits } from "../lib/proxy/header_edits.ts";
import { silentLogger } from "../lib/observe/logger.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const ANCHORS = Deno.env.get("ANCHORS_DIR") ?? join(ROOT, "..", "shared", "bench");
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

/** CPU time of this process in ms: steadier than wall time on a machine shared with other work. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const clientKeys = (n: number) =>
  Array.from({ length: n }, (_, i) => [`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`]);

/** Decisions per CPU-second, best of three runs of `seconds` (this machine is shared and noisy). */
function memoryRate(spec: AlgorithmSpec, seconds: number): number {
  const limits = [limitOf(spec)];
  const keys = clientKeys(1000);
  let best = 0;
  for (let run = 0; run < 3; run++) {
    const store = new MemoryLimiterStore();
    const t0 = performance.now();
    const cpu0 = cpuMs();
    let n = 0;
    const start = Date.now();
    while (performance.now() - t0 < seconds * 1000) {
      // Time moves on as it would: a millisecond per ~1000 decisions.
      for (let i = 0; i < 1000; i++) store.decide(limits, keys[i]!, start + (n >> 10));
      n += 1000;
    }
    best = Math.max(best, n / ((cpuMs() - cpu0) / 1000));
  }
  return best;
}

/**
 * Decisions per CPU-second of one key whose sliding log is full: requests at
 * exactly its limit's rate, so each one admitted lets one entry expire. What a
 * step costs there grows with the limit if the log is copied; best of three.
 */
function fullLogRate(limit: number, seconds: number): number {
  const limits = [limitOf({ kind: "sliding_log", limit, perMs: 1000 })];
  const key = ["10.0.0.1"];
  const perMs = limit / 1000;
  let best = 0;
  for (let run = 0; run < 3; run++) {
    const store = new MemoryLimiterStore();
    // One window to fill the log, then the measured decisions.
    for (let i = 0; i < limit; i++) store.decide(limits, key, Math.floor(i / perMs));
    const t0 = performance.now();
    const cpu0 = cpuMs();
    let n = limit;
    while (performance.now() - t0 < seconds * 1000) {
      for (let i = 0; i < 1000; i++, n++) store.decide(limits, key, Math.floor(n / perMs));
    }
    best = Math.max(best, (n - limit) / ((cpuMs() - cpu0) / 1000));
  }
  return best;
}

/**
 * CPU microseconds the policy adds to a request (key, decision, RateLimit
 * headers on the response), against a handler that answers at once; best of 6.
 */
function policyCost(headers: "ietf" | "none"): number {
  const config = rateLimitSchema.parse({
    algorithm: "token_bucket",
    rate: BIG,
    per: "1s",
    headers,
  });
  const limit = compileRateLimit(config, 0, { name: "route:bench", defaultKey: ["ip"] });
  const policy = rateLimitPolicy({
    base: [limit],
    byPlan: null,
    store: new MemoryLimiterStore(),
    clock: systemClock,
    onError: "allow",
  });
  const ctx = new RequestContext(
    incomingOf(new Request("http://bench/api/users/42")),
    "GET",
    "/api/users/42",
    "",
    "bench",
    "10.0.0.1",
    "10.0.0.1",
    { name: "public", tls: false },
    Date.now(),
    performance.now(),
    "id",
    parseTraceparent(null, null),
    new HeaderEdits(),
  );
  const response = new Response("ok");
  const upstream = () => response;
  let best = Infinity;
  for (let round = 0; round < 6; round++) {
    const n = 200_000;
    const cpu0 = cpuMs();
    for (let i = 0; i < n; i++) policy(ctx, upstream);
    best = Math.min(best, (cpuMs() - cpu0) * 1000 / n);
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

/** `keys` new client keys against a store capped at 100,000: what it holds, and decisions per CPU-second. */
function memoryFlood(keys: number): { held: number; rate: number } {
  const store = new MemoryLimiterStore({ maxKeys: 100_000 });
  const limits = [limitOf(ALGORITHMS[0]![1])];
  const now = Date.now();
  const key = [""];
  const cpu0 = cpuMs();
  for (let i = 0; i < keys; i++) {
    key[0] = `client-${i}`;
    store.decide(limits, key, now);
  }
  return { held: store.size, rate: keys / ((cpuMs() - cpu0) / 1000) };
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

interface FloodPhase {
  keys: number;
  rssMb: number;
}

/**
 * A gateway process flooded with distinct `X-Client` keys by wrk, in 10-second
 * phases until `keys` were sent or `maxSeconds` passed; its RSS after each.
 */
async function gatewayFlood(keys: number, maxSeconds: number): Promise<FloodPhase[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-rl-bench-" });
  const children: Deno.ChildProcess[] = [];
  try {
    if (!await answers(`http://127.0.0.1:${UPSTREAM_PORT}/`)) {
      const nginx = ["-c", join(ANCHORS, "nginx-upstream.conf")];
      children.push(new Deno.Command("nginx", { args: nginx, stderr: "null" }).spawn());
      await answers(`http://127.0.0.1:${UPSTREAM_PORT}/`);
    }
    const port = freePort();
    const file = join(dir, "gateway.yaml");
    await Deno.writeTextFile(
      file,
      `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
observe: { access_log: { enabled: false } }
store: { kind: memory, memory: { max_keys: 20000 } }
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
      args: [
        "run",
        "-A",
        V8_FLAGS_ARG,
        join(ROOT, "main.ts"),
        "--config",
        file,
        "--log-level",
        "warn",
        "--workers", // the RSS of one isolate holding the memory store
        "1",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.push(gw);
    const url = `http://127.0.0.1:${port}/api/users/42`;
    if (!await answers(url)) throw new Error("the gateway did not start");
    await wrk(url, join(dir, "warm.lua"), 0, 2, 100);
    const out: FloodPhase[] = [{ keys: 100, rssMb: await rssMb(gw.pid) }];
    let sent = 0;
    for (let i = 0; sent < keys && i * 10 < maxSeconds; i++) {
      sent += await wrk(url, join(dir, `flood-${i}.lua`), sent, 10, null);
      out.push({ keys: sent, rssMb: await rssMb(gw.pid) });
    }
    return out;
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
 * Runs wrk with a script that sends X-Client values counting up from `from`,
 * a new one on every request or cycling through `cycle` of them; returns the
 * number of requests sent.
 */
async function wrk(
  url: string,
  script: string,
  from: number,
  seconds: number,
  cycle: number | null,
) {
  const value = cycle === null ? `(${from} + n)` : `(n % ${cycle})`;
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

const count = (n: number) => Math.round(n).toLocaleString("en");

export async function rateLimitBench(
  seconds = 1,
  floodKeys = 1_000_000,
  floodSeconds = 30,
): Promise<string> {
  const rows = ["| rate limiting | decisions/s |", "|---|---:|"];
  // Memory rows are per CPU-second of one core; Redis rows are wall time (two processes).
  for (const [name, spec] of ALGORITHMS) {
    const rate = memoryRate(spec, seconds);
    rows.push(`| memory store: ${name} | ${count(rate)} |`);
    console.error(`memory ${name}: ${count(rate)}/s`);
  }
  for (const limit of [100, 10_000]) {
    const rate = fullLogRate(limit, seconds);
    const name = `sliding_log (limit ${count(limit)}, 1s), one key with a full log`;
    rows.push(`| memory store: ${name} | ${count(rate)} |`);
    console.error(`memory ${name}: ${count(rate)}/s`);
  }
  await withRedis(async (url) => {
    await loadRedisClient();
    const connections = new RedisConnections(silentLogger);
    try {
      const config = redisSchema.parse({ url, timeout_ms: 2000 });
      const client = connections.get(config);
      if (!await whenReady(client, 5000)) throw new Error("redis-server did not start");
      const store = new RedisLimiterStore(client, config, connections);
      for (const [name, spec] of [ALGORITHMS[0]!, ALGORITHMS[4]!]) {
        const rate = await redisRate(store, spec, seconds * 3);
        rows.push(`| redis store, one process, 256 in flight: ${name} | ${count(rate)} |`);
        console.error(`redis ${name}: ${count(rate)}/s`);
      }
    } finally {
      connections.closeAll();
    }
  });
  const cost = { ietf: policyCost("ietf"), none: policyCost("none") };
  const flood = memoryFlood(floodKeys);
  const phases = await gatewayFlood(floodKeys, floodSeconds);
  return [
    rows.join("\n"),
    "",
    `Policy CPU cost per request (token bucket, memory store): ${cost.ietf.toFixed(2)} µs with ` +
    `RateLimit headers, ${cost.none.toFixed(2)} µs with headers: none.`,
    `Memory store, ${count(floodKeys)} distinct keys, max_keys 100,000: ` +
    `${count(flood.held)} keys held (${count(flood.rate)} new-key decisions per CPU-second).`,
    `Gateway process (--workers 1), max_keys 20,000, a new X-Client key on every request (wrk): RSS ` +
    phases.map((p) => `${p.rssMb.toFixed(0)} MB after ${count(p.keys)} keys`).join(", ") +
    ` (the first: warm-up on 100 keys).`,
  ].join("\n");
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
