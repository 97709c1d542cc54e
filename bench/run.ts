/**
 * `deno task bench`: the gateway beside its anchors in one run, one table.
 *
 * Anchors (from ../shared/bench, or $ANCHORS_DIR): the upstream hit directly,
 * nginx proxy_pass, HAProxy, a bare Deno `fetch` proxy, and @fastify/http-proxy
 * on Node when Node is installed. Then the gateway in each configuration of
 * bench/configs.ts. Every target is loaded with wrk for the same duration and
 * connection count, each run right beside a run of the bare Deno proxy (this
 * machine's throughput drifts by up to 2x within a minute, so a ratio is only
 * taken between runs seconds apart); the table reports the median run per
 * target and, as ratios, the median over rounds of the paired ratios to the
 * bare proxy and to nginx, and is written with every pair to
 * bench/results/DATE.md (DATE-HHMM.md if that exists). The routing-only rows are also paired with
 * @fastify/http-proxy directly, in a second table. Gateway rows also give
 * RSS: after start and one request (idle), and the peak of a warm-up run
 * under load (sampled every 250 ms).
 *
 * Ports: a fixed range away from the anchors' own (their configs are copied with
 * 9001/9100/9200/9300 moved to 19001 (upstream), 19100 (nginx), 19200 (HAProxy),
 * 19300 (bare Deno), so a stray `anchors.sh` run does not share them), then
 * 19400 (fastify), 19500+ (gateways), 19600+ (their admin), 19700 (Redis).
 * Each is checked free before use (nginx listens with reuseport: a second one
 * would silently split the load): another bench running alongside fails this
 * one clearly instead of measuring the wrong process.
 *
 *   deno task bench [--seconds 5] [--connections 64] [--rounds 2] [--only routing,jwt]
 *                   [--soak 300]
 *
 * `--soak SECONDS` then loads the routing-only gateway (one worker) for that long and reports
 * its RSS at the start and end of the load (issue 11: no growth over a soak).
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchTarget, gatewayTargets } from "./configs.ts";
import { rateLimitBench } from "./ratelimit.ts";
import { cpuSeconds, peakRss, rssMb } from "./processes.ts";
import {
  BARE,
  byMinute,
  FASTIFY,
  median,
  type Pair,
  type Ratios,
  render,
  renderPairs,
  renderVsFastify,
  type Row,
} from "./report.ts";
import { wrk } from "./wrk.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
const ANCHORS = Deno.env.get("ANCHORS_DIR") ?? join(ROOT, "..", "shared", "bench");

const { values: opts } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "64" },
    rounds: { type: "string", default: "2" },
    only: { type: "string" },
    soak: { type: "string" },
  },
});
const SECONDS = Number(opts.seconds);
const CONNECTIONS = Number(opts.connections);
const ROUNDS = Number(opts.rounds);
const PRE_RUN_SECONDS = 1;
const SOAK = opts.soak === undefined ? 0 : Number(opts.soak);
if (!(SOAK >= 0)) throw new Error(`--soak expects seconds, got ${opts.soak}`);
const FASTIFY_PORT = 19400;
/** Anchor port in the shared configs -> the port this bench runs it on. */
const ANCHOR_PORTS: Record<number, number> = { 9001: 19001, 9100: 19100, 9200: 19200, 9300: 19300 };
export const UPSTREAM = `http://127.0.0.1:${ANCHOR_PORTS[9001]}`;

const PAIRED_WITH_FASTIFY = "gateway routing-only";

const children: Deno.ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

function spawn(cmd: string, args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  const child = new Deno.Command(cmd, { args, env, stdout: "null", stderr: "null" }).spawn();
  children.push(child);
  return child;
}

async function stopAll(): Promise<void> {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch {
      // gone already
    }
  }
  await Promise.all(children.map((c) => c.status));
  for (const f of cleanups) await f().catch(() => {});
}

async function waitFor(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url, { headers });
      await r.body?.cancel();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return false;
}

function have(tool: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Throws naming every port in `ports` that something already listens on. */
export function requireFree(ports: number[], what: string): void {
  const taken = ports.filter((port) => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return false;
    } catch {
      return true;
    }
  });
  if (taken.length > 0) {
    throw new Error(
      `${what} port(s) ${taken.join(", ")} already in use (another bench running?): ` +
        "stop it and run again",
    );
  }
}

async function startAnchors(): Promise<BenchTarget[]> {
  const targets: BenchTarget[] = [];
  if (!have("wrk")) throw new Error("wrk is not installed (apt-get install wrk)");
  const anchorsThere = await Deno.stat(join(ANCHORS, "nginx-upstream.conf")).then(() => true)
    .catch(() => false);
  if (!anchorsThere) throw new Error(`anchor configs not found in ${ANCHORS} (set ANCHORS_DIR)`);
  requireFree(Object.values(ANCHOR_PORTS), "anchor");
  const local = await Deno.makeTempDir({ prefix: "gw-bench-anchors-" });
  cleanups.push(() => Deno.remove(local, { recursive: true }));
  const copy = async (file: string) => {
    let text = await Deno.readTextFile(join(ANCHORS, file));
    for (const [from, to] of Object.entries(ANCHOR_PORTS)) {
      text = text.replaceAll(`127.0.0.1:${from}`, `127.0.0.1:${to}`)
        .replaceAll(`port: ${from}`, `port: ${to}`);
    }
    // Their own pid and error files, not those of an anchors.sh run alongside.
    text = text.replaceAll("/tmp/bench-", join(local, "bench-"));
    await Deno.writeTextFile(join(local, file), text);
    return join(local, file);
  };
  const url = (port: number, path: string) => `http://127.0.0.1:${ANCHOR_PORTS[port]}${path}`;
  spawn("nginx", ["-c", await copy("nginx-upstream.conf")]);
  targets.push({ name: "direct", url: url(9001, "/42") });
  const processOf = (child: Deno.ChildProcess) => () => child.pid;
  const nginx = spawn("nginx", ["-c", await copy("nginx-proxy.conf")]);
  targets.push({ name: "nginx", url: url(9100, "/api/users/42"), cpuPid: processOf(nginx) });
  if (have("haproxy")) {
    const haproxy = spawn("haproxy", ["-f", await copy("haproxy.cfg")]);
    targets.push({ name: "haproxy", url: url(9200, "/api/users/42"), cpuPid: processOf(haproxy) });
  }
  const bareProxy = spawn(Deno.execPath(), ["run", "-A", await copy("bare-proxy.ts")]);
  targets.push({
    name: "deno-bare",
    url: url(9300, "/api/users/42"),
    cpuPid: processOf(bareProxy),
  });
  if (have("node") && have("npm")) {
    const dir = join(HERE, ".fastify");
    const installed = await Deno.stat(join(dir, "node_modules", "@fastify", "http-proxy"))
      .then(() => true).catch(() => false);
    if (!installed) {
      await Deno.mkdir(dir, { recursive: true });
      await new Deno.Command("npm", {
        args: ["install", "--prefix", dir, "--silent", "fastify@5", "@fastify/http-proxy@11"],
        stdout: "null",
        stderr: "null",
      }).output();
    }
    requireFree([FASTIFY_PORT], "fastify anchor");
    const node = spawn("node", [
      join(HERE, "fastify-proxy.mjs"),
      dir,
      String(FASTIFY_PORT),
      UPSTREAM,
    ]);
    targets.push({
      name: FASTIFY,
      url: `http://127.0.0.1:${FASTIFY_PORT}/api/users/42`,
      cpuPid: processOf(node),
    });
  }
  return targets;
}

async function main(): Promise<void> {
  const only = opts.only?.split(",");
  const targets = await startAnchors();
  const gateways = await gatewayTargets(ROOT, UPSTREAM, spawn, cleanups, requireFree);
  targets.push(...gateways.filter((g) => !only || only.some((o) => g.name.includes(o))));
  const ready: BenchTarget[] = [];
  for (const t of targets) {
    if (await waitFor(t.url, t.headers)) ready.push(t);
    else console.error(`skipped ${t.name}: ${t.url} did not answer`);
  }
  const idle = new Map<string, number | undefined>();
  for (const t of ready) idle.set(t.name, await rssMb(t.pid?.()));
  // Every target is warmed (JIT, pools, heap) before the measured rounds: a cold first round
  // is a start-up cost, not the steady state the table is about. All for as long: the bare
  // proxy and fastify compile as they run too (until 2026-12-07 they had 2 s, the gateways 5).
  // The gateways' RSS under load is sampled here, not in the measured runs: reading
  // /proc/PID/status four times a second measurably lengthened the sampled process's p99 (and
  // the bare proxy is not sampled).
  const loadedRss = new Map<string, number | undefined>();
  for (const t of ready) {
    const peak = t.pid ? peakRss(t.pid()) : null;
    await wrk(t.url, t.header, SECONDS, CONNECTIONS);
    loadedRss.set(t.name, await peak?.stop());
  }
  const bare = ready.find((t) => t.name === BARE);
  const results = new Map<string, Row[]>();
  const ratios = new Map<string, Ratios[]>();
  const pairs: Pair[] = [];
  const measure = async (t: BenchTarget, round: number, header = t.header): Promise<Row> => {
    // Each run starts from the steady state, not from the lull the other targets' runs left
    // (60-90 s): after one, the gateway's upstream connections have passed their 60 s idle
    // timeout and are opened again, the bare proxy's (hyper, 90 s) have not. The first second
    // after a lull is measured on its own in the README.
    await wrk(t.url, header, PRE_RUN_SECONDS, CONNECTIONS);
    const cpuPid = (t.cpuPid ?? t.pid)?.();
    const cpuBefore = cpuPid === undefined ? undefined : await cpuSeconds(cpuPid);
    const r = await wrk(t.url, header, SECONDS, CONNECTIONS);
    const cpuAfter = cpuPid === undefined ? undefined : await cpuSeconds(cpuPid);
    const row: Row = {
      name: t.name,
      ...r,
      ...(cpuBefore !== undefined && cpuAfter !== undefined && r.requests > 0
        ? { cpuUs: (cpuAfter - cpuBefore) / r.requests * 1e6 }
        : {}),
      rssIdleMb: idle.get(t.name),
      rssMb: loadedRss.get(t.name),
    };
    results.set(t.name, [...(results.get(t.name) ?? []), row]);
    console.error(
      `round ${round + 1}/${ROUNDS} ${t.name.padEnd(28)} ${r.rps.toFixed(0).padStart(7)} req/s ` +
        `p99 ${r.p99.toFixed(2)} ms` +
        (row.cpuUs === undefined ? "" : ` CPU ${row.cpuUs.toFixed(1)} us/req`),
    );
    return row;
  };
  const fastify = ready.find((t) => t.name === FASTIFY);
  const vsFastify = new Map<string, Ratios[]>();
  const fastifyPairs: Pair[] = [];
  /** Runs `t` and `ref` seconds apart, `ref` first in odd rounds, second in even ones. */
  const pair = async (t: BenchTarget, ref: BenchTarget, round: number): Promise<Pair> => {
    // The reference gets the same request, credentials included: a 700-byte bearer token is
    // bytes every proxy parses, checks and forwards.
    const [a, b] = round % 2 === 0 ? [ref, t] : [t, ref];
    const first = await measure(a, round, t.header);
    const second = await measure(b, round, t.header);
    const [refRow, row] = a === ref ? [first, second] : [second, first];
    return { round: round + 1, target: row, ref: refRow };
  };
  const ratioOf = (p: Pair): Ratios => ({
    rps: p.target.rps / p.ref.rps,
    p99: p.target.p99 / p.ref.p99,
    ...(p.target.cpuUs !== undefined && p.ref.cpuUs !== undefined
      ? { cpu: p.target.cpuUs / p.ref.cpuUs }
      : {}),
  });
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of ready) {
      if (t === bare) continue;
      if (bare === undefined) {
        await measure(t, round);
        continue;
      }
      // Each target is measured next to a run of the bare proxy, first or second by turns:
      // this host's speed drifts by up to 2x within a minute, so a ratio is only honest
      // between two runs seconds apart.
      const p = await pair(t, bare, round);
      ratios.set(t.name, [...(ratios.get(t.name) ?? []), ratioOf(p)]);
      pairs.push(p);
      if (fastify !== undefined && t.name.startsWith(PAIRED_WITH_FASTIFY)) {
        const f = await pair(t, fastify, round);
        vsFastify.set(t.name, [...(vsFastify.get(t.name) ?? []), ratioOf(f)]);
        fastifyPairs.push(f);
      }
    }
  }
  const rows = ready.map((t) => median(results.get(t.name)!, (r) => r.rps));
  // Decisions per second and the memory bound (`--only ratelimit` runs them too).
  const limiting = !only || only.includes("ratelimit") ? "\n\n" + await rateLimitBench() : "";
  const routing = ready.find((t) => t.name === "gateway routing-only --workers 1");
  const soak = SOAK > 0 && routing ? "\n\n" + await soakRss(routing) : "";
  const table = render(rows, results, ratios) + renderVsFastify(vsFastify) + soak + limiting;
  console.log(table);
  const now = new Date().toISOString();
  const date = now.slice(0, 10);
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .split("\n").find((l) => l.startsWith("model name"))?.split(":")[1]?.trim() ?? "unknown CPU";
  await Deno.mkdir(join(HERE, "results"), { recursive: true });
  // A second run on the same day gets its time too: it must not overwrite the first.
  const dayFile = join(HERE, "results", `${date}.md`);
  const taken = await Deno.stat(dayFile).then(() => true, () => false);
  const file = taken
    ? join(HERE, "results", `${date}-${now.slice(11, 13)}${now.slice(14, 16)}.md`)
    : dayFile;
  await Deno.writeTextFile(
    file,
    `# Benchmark ${date}\n\nMachine: ${cpu}, ${navigator.hardwareConcurrency} cores, ${Deno.build.os}. ` +
      `Deno ${Deno.version.deno}. wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} round(s); ` +
      `each target measured beside a run of ${BARE} with the same request (${BARE} first in odd rounds, second in ` +
      `even ones), the routing-only rows beside a run of ${FASTIFY} too, each run after ${PRE_RUN_SECONDS} s of unmeasured load. ` +
      `req/s, p50 and p99: median run per target; ratios: median over rounds of ` +
      `the paired ratio. CPU us/req: user and system CPU time of the target's processes (and their ` +
      `children) over the run's completed requests, read from /proc before and after the run; the median over runs, ` +
      `and paired ratios as above. Command: \`deno task bench ${Deno.args.join(" ")}\`\n\n` +
      table + "\n" + renderPairs(pairs, BARE) + renderPairs(fastifyPairs, FASTIFY),
  );
  console.error(`written to ${file}`);
}

/** Loads `t` for --soak seconds, sampling its RSS every second. */
async function soakRss(t: BenchTarget): Promise<string> {
  const samples: number[] = [];
  const timer = setInterval(async () => {
    const mb = await rssMb(t.pid?.());
    if (mb !== undefined) samples.push(mb);
  }, 1000);
  const args = ["-t1", `-c${CONNECTIONS}`, `-d${SOAK}s`, "--latency"];
  const out = await new Deno.Command("wrk", { args: [...args, t.url], stdout: "piped" }).output();
  clearInterval(timer);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "0";
  // The first sample is after one second of load: start RSS under load, not idle.
  const mb = (n: number | undefined) => (n === undefined ? "-" : n.toFixed(1));
  return [
    `Soak: ${t.name}, wrk -t1 -c${CONNECTIONS} for ${SOAK}s, ${Number(rps).toFixed(0)} req/s.`,
    "",
    "| RSS at start MB | RSS at end MB | peak MB | samples |",
    "|---:|---:|---:|---:|",
    `| ${mb(samples[0])} | ${mb(samples.at(-1))} | ${
      mb(samples.length ? Math.max(...samples) : undefined)
    } | ${samples.length} |`,
    "",
    // Growth shows as a rising band, not as one sample above another.
    `RSS range by minute of load, MB: ${byMinute(samples).join(", ")}.`,
  ].join("\n");
}

try {
  await main();
} finally {
  await stopAll();
}
