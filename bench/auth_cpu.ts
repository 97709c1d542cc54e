/**
 * What share of the gateway's CPU the auth policy takes, per route:
 * `deno run -A bench/auth_cpu.ts [seconds=6]`.
 *
 * Throughput ratios (`deno task bench`) cannot resolve a few per cent on a
 * machine whose throughput drifts by half from one run to the next. CPU time
 * does: for each route (routing only, API key, JWT RS256 with cached keys) a
 * gateway runs under `--cpu-prof` while wrk loads that route alone, and the
 * profile is split into time spent in auth code (lib/auth, jose) and the rest.
 * Needs nginx and wrk.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { V8_FLAGS_ARG } from "../lib/cli/v8_flags.ts";

const seconds = Number(Deno.args[0] ?? 6);
const ROOT = new URL("..", import.meta.url).pathname;
const API_KEY = "bench-key-0123456789abcdef";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Busy CPU time in a profile, and the part whose nearest project frame is auth code. */
function authShare(p: Profile): { busyMs: number; authMs: number } {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfTime = new Map<number, number>();
  p.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + p.timeDeltas[i]!));
  let busy = 0;
  let auth = 0;
  for (const [id, t] of selfTime) {
    if (nodes.get(id)!.callFrame.functionName === "(idle)") continue;
    busy += t;
    // Runtime built-ins count for whichever project code called them.
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const url = nodes.get(cur)!.callFrame.url;
      if (url.includes("/jose/") || url.includes("/lib/auth/")) {
        auth += t;
        break;
      }
      if (url.startsWith(`file://${ROOT}`)) break;
    }
  }
  return { busyMs: busy / 1000, authMs: auth / 1000 };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gw-auth-cpu-" });
  const upstreamPort = freePort();
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...await exportJWK(publicKey), kid: "bench", alg: "RS256" };
  await Deno.writeTextFile(`${dir}/jwks.json`, JSON.stringify({ keys: [jwk] }));
  const token = await new SignJWT({ sub: "bench-user", scope: "read" })
    .setProtectedHeader({ alg: "RS256", kid: "bench" })
    .setIssuer("https://idp.bench").setAudience("bench").setExpirationTime("2h")
    .sign(privateKey);
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:${upstreamPort}; keepalive_requests 1000000;
  location / { default_type application/json; return 200 '{"id":42,"name":"Ada"}'; } } }
`,
  );
  const nginx = new Deno.Command("nginx", { args: ["-c", `${dir}/nginx.conf`] }).spawn();
  const routes = [
    { name: "routing only", path: "/plain/42", header: "X-Trace: 1" },
    { name: "API key", path: "/key/42", header: `X-API-Key: ${API_KEY}` },
    { name: "JWT RS256, keys cached", path: "/jwt/42", header: `Authorization: Bearer ${token}` },
  ];
  console.log(
    `wrk -t1 -c32 -d${seconds}s per route, one gateway process (--workers 1) per route\n`,
  );
  console.log("| route | req/s (noisy) | busy CPU s | auth CPU s | auth share of CPU |");
  console.log("|---|---:|---:|---:|---:|");
  try {
    for (const [i, r] of routes.entries()) {
      const port = freePort();
      const profDir = `${dir}/prof-${i}`;
      await Deno.writeTextFile(
        `${dir}/gateway.yaml`,
        `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
upstreams: { users: { targets: [ { url: "http://127.0.0.1:${upstreamPort}" } ] } }
auth:
  keys: { kind: api_key }
  bearer: { kind: jwt, jwks_file: ${dir}/jwks.json, issuer: https://idp.bench, audience: bench }
consumers:
  - { id: bench-app, api_keys: ["${API_KEY}"], subjects: [bench-user] }
routes:
  - { name: plain, match: { path: /plain }, upstream: users }
  - { name: key, match: { path: /key }, upstream: users, auth: [keys] }
  - { name: jwt, match: { path: /jwt }, upstream: users, auth: [bearer] }
`,
      );
      const gw = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          V8_FLAGS_ARG,
          "--cpu-prof",
          `--cpu-prof-dir=${profDir}`,
          `${ROOT}main.ts`,
          "--config",
          `${dir}/gateway.yaml`,
          "--log-level",
          "warn",
          "--workers", // the CPU profile of the one isolate that serves
          "1",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const url = `http://127.0.0.1:${port}${r.path}`;
      await ready(url, r.header);
      const out = new TextDecoder().decode(
        (await new Deno.Command("wrk", {
          args: ["-t1", "-c32", `-d${seconds}s`, "-H", r.header, url],
        }).output()).stdout,
      );
      gw.kill("SIGTERM");
      await gw.status;
      const [file] = [...Deno.readDirSync(profDir)].map((e) => `${profDir}/${e.name}`);
      const { busyMs, authMs } = authShare(JSON.parse(await Deno.readTextFile(file!)));
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? "?";
      console.log(
        `| ${r.name} | ${Math.round(Number(rps))} | ${(busyMs / 1000).toFixed(2)} | ${
          (authMs / 1000).toFixed(3)
        } | ${(authMs / busyMs * 100).toFixed(2)}% |`,
      );
    }
  } finally {
    nginx.kill("SIGTERM");
    await nginx.status;
    await Deno.remove(dir, { recursive: true });
  }
}

async function ready(url: string, header: string): Promise<void> {
  const colon = header.indexOf(":");
  const headers = { [header.slice(0, colon)]: header.slice(colon + 1).trim() };
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url, { headers });
      await res.body?.cancel();
      if (res.status === 200) return;
      throw new Error(`${url} answered ${res.status}`);
    } catch (e) {
      if (e instanceof Error && e.message.includes("answered")) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within 10 s`);
}

await main();
