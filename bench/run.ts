/**
 * `deno task bench [seconds] [connections] [rounds]`: the gateway under wrk,
 * one route per policy set, all in one gateway process and one run, against
 * one nginx upstream, so that the ratios between routes mean something on a
 * noisy machine. Rounds interleave the routes; the table shows their mean.
 *
 *   plain  routing only
 *   key    API key (header), consumer resolved, identity headers set
 *   jwt    JWT RS256 from a JWKS URL (keys cached), identity headers set
 *
 * Needs nginx and wrk on PATH. Absolute numbers drift between runs and
 * machines: compare the ratios.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";

interface Scenario {
  name: string;
  path: string;
  header?: string;
  what: string;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: string;
}

const [seconds = 8, connections = 64, rounds = 2] = Deno.args.map(Number);
const ROOT = new URL("..", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** wrk's latency (`812.00us`, `1.20ms`, `2.01s`) in milliseconds. */
function ms(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text ?? "");
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
}

async function wrk(url: string, header: string | undefined, duration: number): Promise<Sample> {
  const args = ["-t1", `-c${connections}`, `-d${duration}s`, "--latency"];
  if (header) args.push("-H", header);
  const out = new TextDecoder().decode(
    (await new Deno.Command("wrk", { args: [...args, url] })
      .output()).stdout,
  );
  const field = (re: RegExp) => re.exec(out)?.[1];
  return {
    rps: Number(field(/Requests\/sec:\s+([\d.]+)/)),
    p50: ms(field(/^\s+50%\s+(\S+)/m)),
    p99: ms(field(/^\s+99%\s+(\S+)/m)),
    errors: [field(/(Non-2xx or 3xx responses: \d+)/), field(/(Socket errors: .*)/)]
      .filter(Boolean).join("; "),
  };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gw-bench-" });
  const [upstreamPort, gatewayPort, adminPort] = [freePort(), freePort(), freePort()];
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwks = JSON.stringify({
    keys: [{ ...await exportJWK(publicKey), kid: "bench", alg: "RS256" }],
  });
  const token = await new SignJWT({ sub: "bench-user", scope: "read" })
    .setProtectedHeader({ alg: "RS256", kid: "bench" })
    .setIssuer("https://idp.bench").setAudience("bench").setExpirationTime("2h")
    .sign(privateKey);
  const apiKey = "bench-key-0123456789abcdef";

  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:${upstreamPort};
    keepalive_requests 1000000;
    location = /jwks { default_type application/json; return 200 '${jwks}'; }
    location / { default_type application/json; return 200 '{"service":"users","id":42,"name":"Ada"}'; }
  }
}
`,
  );
  await Deno.writeTextFile(
    `${dir}/gateway.yaml`,
    `listeners: [ { name: public, host: 127.0.0.1, port: ${gatewayPort} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:${upstreamPort}" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key }
  bearer:
    kind: jwt
    jwks_url: "http://127.0.0.1:${upstreamPort}/jwks"
    issuer: https://idp.bench
    audience: bench
    algorithms: [RS256]
consumers:
  - { id: bench-app, api_keys: ["${apiKey}"], subjects: [bench-user] }
routes:
  - { name: plain, match: { path: /plain }, upstream: users }
  - { name: key, match: { path: /key }, upstream: users, auth: [keys] }
  - { name: jwt, match: { path: /jwt }, upstream: users, auth: [bearer] }
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
      `${ROOT}main.ts`,
      "--config",
      `${dir}/gateway.yaml`,
      "--log-level",
      "warn",
    ]);
    const base = `http://127.0.0.1:${gatewayPort}`;
    await waitUntilServing(`${base}/plain`);

    const scenarios: Scenario[] = [
      { name: "plain", path: "/plain/42", what: "routing only" },
      { name: "key", path: "/key/42", header: `X-API-Key: ${apiKey}`, what: "API key" },
      {
        name: "jwt",
        path: "/jwt/42",
        header: `Authorization: Bearer ${token}`,
        what: "JWT RS256, JWKS cached",
      },
    ];
    for (const s of scenarios) await checkStatus(`${base}${s.path}`, s.header);

    const samples = new Map<string, Sample[]>(scenarios.map((s) => [s.name, []]));
    for (const s of scenarios) await wrk(`${base}${s.path}`, s.header, 2); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const s of scenarios) {
        samples.get(s.name)!.push(await wrk(`${base}${s.path}`, s.header, seconds));
      }
    }
    report(scenarios, samples);
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}

async function waitUntilServing(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the gateway did not serve ${url} within 10 s`);
}

async function checkStatus(url: string, header: string | undefined): Promise<void> {
  const headers: Record<string, string> = {};
  if (header) headers[header.slice(0, header.indexOf(":"))] = header.slice(header.indexOf(":") + 1);
  const res = await fetch(url, { headers });
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}, expected 200`);
}

function report(scenarios: Scenario[], samples: Map<string, Sample[]>): void {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rows = scenarios.map((s) => {
    const xs = samples.get(s.name)!;
    return {
      s,
      rps: mean(xs.map((x) => x.rps)),
      p50: mean(xs.map((x) => x.p50)),
      p99: mean(xs.map((x) => x.p99)),
      runs: xs.map((x) => Math.round(x.rps)).join(" / "),
      errors: [...new Set(xs.map((x) => x.errors).filter(Boolean))].join("; "),
    };
  });
  const plain = rows[0]!.rps;
  console.log(
    `\nwrk -t1 -c${connections} -d${seconds}s, ${rounds} interleaved round(s), mean per route\n`,
  );
  console.log("| route | policies | req/s | vs plain | p50 ms | p99 ms | rounds req/s | errors |");
  console.log("|---|---|---:|---:|---:|---:|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.s.name} | ${r.s.what} | ${Math.round(r.rps)} | ${(r.rps / plain).toFixed(3)} | ${
        r.p50.toFixed(2)
      } | ${r.p99.toFixed(2)} | ${r.runs} | ${r.errors || "-"} |`,
    );
  }
}

await main();
