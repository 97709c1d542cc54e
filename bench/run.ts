/**
 * `deno task bench`: the gateway beside its anchors in one run, one table.
 *
 * Anchors (from ../shared/bench, or $ANCHORS_DIR): the upstream hit directly,
 * nginx proxy_pass, HAProxy, a bare Deno `fetch` proxy, and @fastify/http-proxy
 * on Node when Node is installed. Then the gateway in each configuration of
 * bench/configs.ts. Every target is loaded with wrk for the same duration and
 * connection count, in interleaved rounds (this machine's throughput drifts
 * from minute to minute); the table reports the median round per target and
 * ratios to the bare Deno proxy and to nginx, and is written to
 * bench/results/DATE.md.
 *
 *   deno task bench [--seconds 5] [--connections 64] [--rounds 2] [--only routing,jwt]
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchTarget, gatewayTargets } from "./configs.ts";

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
  },
});
const SECONDS = Number(opts.seconds);
const CONNECTIONS = Number(opts.connections);
const ROUNDS = Number(opts.rounds);

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: string;
  rssMb?: number;
}

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

/** wrk output -> req/s, p50 and p99 in milliseconds. */
async function wrk(url: string, header?: string): Promise<Omit<Row, "name">> {
  const args = ["-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, "--latency"];
  if (header) args.push("-H", header);
  const out = new TextDecoder().decode(
    (await new Deno.Command("wrk", { args: [...args, url], stdout: "piped" }).output()).stdout,
  );
  const ms = (s: string | undefined) => {
    const m = /^([\d.]+)(us|ms|s)$/.exec(s ?? "");
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const line = (label: string) => out.split("\n").find((l) => l.trim().startsWith(label));
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: ms(line("50%")?.trim().split(/\s+/)[1]),
    p99: ms(line("99%")?.trim().split(/\s+/)[1]),
    errors: out.split("\n").filter((l) => /Non-2xx|Socket errors/.test(l)).map((l) => l.trim())
      .join("; "),
  };
}

async function rssMb(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]) / 1024;
  } catch {
    return undefined;
  }
}

async function startAnchors(): Promise<BenchTarget[]> {
  const targets: BenchTarget[] = [];
  if (!have("wrk")) throw new Error("wrk is not installed (apt-get install wrk)");
  const anchorsThere = await Deno.stat(join(ANCHORS, "nginx-upstream.conf")).then(() => true)
    .catch(() => false);
  if (!anchorsThere) throw new Error(`anchor configs not found in ${ANCHORS} (set ANCHORS_DIR)`);
  spawn("nginx", ["-c", join(ANCHORS, "nginx-upstream.conf")]);
  targets.push({ name: "direct", url: "http://127.0.0.1:9001/42" });
  spawn("nginx", ["-c", join(ANCHORS, "nginx-proxy.conf")]);
  targets.push({ name: "nginx", url: "http://127.0.0.1:9100/api/users/42" });
  if (have("haproxy")) {
    spawn("haproxy", ["-f", join(ANCHORS, "haproxy.cfg")]);
    targets.push({ name: "haproxy", url: "http://127.0.0.1:9200/api/users/42" });
  }
  spawn(Deno.execPath(), ["run", "-A", join(ANCHORS, "bare-proxy.ts")]);
  targets.push({ name: "deno-bare", url: "http://127.0.0.1:9300/api/users/42" });
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
    spawn("node", [join(HERE, "fastify-proxy.mjs")], { NODE_PATH: join(dir, "node_modules") });
    targets.push({ name: "fastify-proxy", url: "http://127.0.0.1:9400/api/users/42" });
  }
  return targets;
}

async function main(): Promise<void> {
  const only = opts.only?.split(",");
  const targets = await startAnchors();
  const gateways = await gatewayTargets(ROOT, spawn, cleanups);
  targets.push(...gateways.filter((g) => !only || only.some((o) => g.name.includes(o))));
  const ready: BenchTarget[] = [];
  for (const t of targets) {
    if (await waitFor(t.url, t.headers)) ready.push(t);
    else console.error(`skipped ${t.name}: ${t.url} did not answer`);
  }
  const results = new Map<string, Row[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of ready) {
      const r = await wrk(t.url, t.header);
      const row: Row = { name: t.name, ...r, rssMb: await rssMb(t.pid?.()) };
      results.set(t.name, [...(results.get(t.name) ?? []), row]);
      console.error(
        `round ${round + 1}/${ROUNDS} ${t.name.padEnd(28)} ${r.rps.toFixed(0).padStart(7)} req/s`,
      );
    }
  }
  const rows = ready.map((t) => median(results.get(t.name)!));
  const table = render(rows);
  console.log(table);
  const date = new Date().toISOString().slice(0, 10);
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .split("\n").find((l) => l.startsWith("model name"))?.split(":")[1]?.trim() ?? "unknown CPU";
  await Deno.mkdir(join(HERE, "results"), { recursive: true });
  const file = join(HERE, "results", `${date}.md`);
  await Deno.writeTextFile(
    file,
    `# Benchmark ${date}\n\nMachine: ${cpu}, ${navigator.hardwareConcurrency} cores, ${Deno.build.os}. ` +
      `Deno ${Deno.version.deno}. wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} interleaved ` +
      `round(s), median round per target. Command: \`deno task bench ${Deno.args.join(" ")}\`\n\n` +
      table + "\n",
  );
  console.error(`written to ${file}`);
}

function median(rows: Row[]): Row {
  const sorted = [...rows].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function render(rows: Row[]): string {
  const bare = rows.find((r) => r.name === "deno-bare");
  const nginx = rows.find((r) => r.name === "nginx");
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : "-");
  const lines = [
    "| target | req/s | p50 ms | p99 ms | req/s vs deno-bare | req/s vs nginx | p99 vs deno-bare | RSS MB | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${
        ratio(r.rps, bare?.rps)
      } | ${ratio(r.rps, nginx?.rps)} | ${ratio(r.p99, bare?.p99)} | ${
        r.rssMb !== undefined ? r.rssMb.toFixed(0) : "-"
      } | ${r.errors || "-"} |`,
    );
  }
  return lines.join("\n");
}

try {
  await main();
} finally {
  await stopAll();
}
