/**
 * Transforms and cache under load, beside the routing-only proxy, in one run:
 *
 *   deno run -A bench/transform_cache.ts [seconds=5] [connections=64] [rounds=3]
 *
 * Starts nginx as the upstream (a small JSON answer), the gateway from main.ts
 * with three routes (routing only; request and response header transforms
 * with templates and the security preset; a cached route), and loads each with
 * wrk in turn, the rows interleaved over several rounds (the median round is
 * shown) so that a noisy neighbour hurts every row alike. Needs nginx and wrk
 * on PATH. Compare rows within one run: absolute numbers drift between runs
 * and machines.
 */
import { closedPort } from "../tests/helpers/upstream.ts";
import { V8_FLAGS_ARG } from "../lib/cli/v8_flags.ts";

const seconds = Number(Deno.args[0] ?? 5);
const connections = Number(Deno.args[1] ?? 64);
const rounds = Number(Deno.args[2] ?? 3);
const root = new URL("..", import.meta.url).pathname;

for (const tool of ["nginx", "wrk"]) {
  const found = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).output();
  if (!found.success) {
    console.error(`${tool} is not on PATH (apt-get install nginx-light wrk)`);
    Deno.exit(2);
  }
}

const dir = await Deno.makeTempDir({ prefix: "gw-bench-" });
const upstreamPort = closedPort();
const gatewayPort = closedPort();
const adminPort = closedPort();

await Deno.writeTextFile(
  `${dir}/nginx.conf`,
  `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir};
  server {
    listen 127.0.0.1:${upstreamPort};
    keepalive_requests 1000000;
    location / {
      default_type application/json;
      return 200 '{"service":"catalog","id":42,"name":"Ada","tags":["a","b"]}';
    }
  }
}
`,
);

await Deno.writeTextFile(
  `${dir}/gateway.yaml`,
  `listeners: [ { name: public, host: 127.0.0.1, port: ${gatewayPort} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
upstreams:
  catalog: { targets: [ { url: "http://127.0.0.1:${upstreamPort}" } ] }
routes:
  - { name: plain, match: { path: /plain }, upstream: catalog }
  - name: headers
    match: { path: /headers }
    upstream: catalog
    transform:
      security_headers: true
      request:
        headers:
          set: { X-Gateway: edge, X-Route: "\${route.name}", X-Tenant: "\${header.X-Tenant}" }
          remove: [Cookie]
      response:
        headers:
          set: { X-Served-By: "\${route.name}" }
          remove: [X-Internal]
  - { name: cached, match: { path: /cached }, upstream: catalog, cache: { ttl_s: 3600 } }
`,
);

const children: Deno.ChildProcess[] = [];
const spawn = (cmd: string, args: string[]) => {
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
  children.push(child);
  return child;
};

try {
  spawn("nginx", ["-c", `${dir}/nginx.conf`]);
  spawn(Deno.execPath(), [
    "run",
    "-A",
    V8_FLAGS_ARG,
    `${root}main.ts`,
    "--config",
    `${dir}/gateway.yaml`,
    "--log-level",
    "warn",
    "--workers", // one isolate: one response cache, one CPU budget per row
    "1",
  ]);
  await until(`http://127.0.0.1:${upstreamPort}/`);
  await until(`http://127.0.0.1:${adminPort}/readyz`);

  const base = `http://127.0.0.1:${gatewayPort}`;
  const rows = [
    ["upstream (nginx)", `http://127.0.0.1:${upstreamPort}/plain`],
    ["routing only", `${base}/plain`],
    ["header transforms", `${base}/headers`],
    ["cache hit", `${base}/cached`],
  ] as const;
  console.log(
    `gateway --workers 1; wrk -t1 -c${connections} -d${seconds}s, ${rounds} interleaved rounds, ` +
      "median shown",
  );
  for (const [, url] of rows) await wrk(url, 1); // warm-up: pools, JIT, the cache entry
  const runs = new Map<string, WrkResult[]>(rows.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, url] of rows) runs.get(name)!.push(await wrk(url, seconds));
  }
  const median: Record<string, number> = {};
  for (const [name] of rows) {
    const sorted = runs.get(name)!.sort((a, b) => a.rps - b.rps);
    const m = sorted[Math.floor(sorted.length / 2)]!;
    median[name] = m.rps;
    console.log(
      `${name.padEnd(18)} ${m.rps.toFixed(0).padStart(8)} req/s  p50 ${m.p50.padStart(8)}  ` +
        `p99 ${m.p99.padStart(8)}  ${m.errors}  (rounds: ${
          runs.get(name)!.map((x) => x.rps.toFixed(0)).join(", ")
        })`,
    );
  }
  const plain = median["routing only"]!;
  console.log(
    `header transforms / routing only: ${(median["header transforms"]! / plain).toFixed(2)}; ` +
      `cache hit / routing only: ${(median["cache hit"]! / plain).toFixed(2)}`,
  );
} finally {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch {
      // already gone
    }
    await c.status;
  }
  await Deno.remove(dir, { recursive: true });
}

async function until(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not come up`);
}

interface WrkResult {
  rps: number;
  p50: string;
  p99: string;
  errors: string;
}

async function wrk(url: string, secs: number): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${connections}`, `-d${secs}s`, "--latency", "-H", "X-Tenant: acme", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const field = (re: RegExp) => re.exec(text)?.[1] ?? "?";
  return {
    rps: Number(field(/Requests\/sec:\s+([\d.]+)/)),
    p50: field(/^\s+50%\s+(\S+)/m),
    p99: field(/^\s+99%\s+(\S+)/m),
    errors: [...text.matchAll(/(Non-2xx or 3xx responses: \d+|Socket errors: .*)/g)]
      .map((m) => m[1]).join("; "),
  };
}
