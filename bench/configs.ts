/**
 * The gateway configurations `deno task bench` loads, each a separate gateway
 * process on its own port, in front of the anchors' upstream (nginx).
 */
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { V8_FLAGS_ARG } from "../lib/cli/v8_flags.ts";

export interface BenchTarget {
  name: string;
  url: string;
  /** One `Name: value` header for wrk. */
  header?: string;
  headers?: Record<string, string>;
  /** Process to sample RSS from. */
  pid?: () => number | undefined;
  /** Process whose CPU time, with its descendants' (nginx's workers), is the target's; else `pid`. */
  cpuPid?: () => number | undefined;
}

type RequireFree = (ports: number[], what: string) => void;
type Spawn = (cmd: string, args: string[], env?: Record<string, string>) => Deno.ChildProcess;

export interface GatewayConfig {
  /** What the configuration does; the row name adds the worker count. */
  name: string;
  /** Isolates (`--workers`, always passed: the default depends on the machine). */
  workers: number;
  /** Routes and sections after listeners/admin/upstreams. */
  body: string;
  path?: string;
  header?: string;
}

/** Worker counts of the routing-only rows: one, two, and one per core (the default). */
const ROUTING_WORKERS = [...new Set([1, 2, navigator.hardwareConcurrency])].sort((a, b) => a - b);

const BENCH_KEY = "bench-key-0123456789abcdef";

/** An RS256 key set in `dir` and a token it verifies, valid for the length of a run. */
async function jwtMaterial(dir: string): Promise<{ jwksFile: string; token: string }> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwksFile = join(dir, "jwks.json");
  const jwk = { ...await exportJWK(publicKey), kid: "bench", alg: "RS256", use: "sig" };
  await Deno.writeTextFile(jwksFile, JSON.stringify({ keys: [jwk] }));
  const token = await new SignJWT({ sub: "bench-user", scope: "read:users" })
    .setProtectedHeader({ alg: "RS256", kid: "bench" })
    .setIssuer("https://idp.bench").setAudience("bench").setExpirationTime("6h")
    .sign(privateKey);
  return { jwksFile, token };
}

/** Limits that never refuse (one client, one hot key): their cost alone. */
const TOKEN_BUCKET = "{ algorithm: token_bucket, rate: 1000000000, per: 1s }";
const SLIDING_WINDOW = "{ algorithm: sliding_window, limit: 1000000000, per: 1s }";

/** The bench's gateway configurations (also loaded by tests/memory/rss_test.ts); key files go in `dir`. */
export async function configs(dir: string, redisUrl: string): Promise<GatewayConfig[]> {
  const { jwksFile, token } = await jwtMaterial(dir);
  const consumers = `consumers:
  - { id: bench-app, api_keys: ["${BENCH_KEY}"], subjects: [bench-user], scopes: [read:users] }`;
  const routingOnly = `
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users }
`;
  const jwtFull = `
auth:
  bearer: { kind: jwt, jwks_file: "${jwksFile}", issuer: https://idp.bench, audience: bench,
            algorithms: [RS256] }
${consumers}
routes:
  - name: users
    match: { path: /api/users }
    strip_prefix: true
    upstream: users
    auth: [bearer]
    scopes: [read:users]
    rate_limit: ${SLIDING_WINDOW}
    transform:
      request:
        headers:
          set: { X-Consumer-Id: "\${consumer.id}", X-Request-Id: "\${request_id}" }
          remove: [Cookie]
      response:
        headers:
          set: { X-Served-By: gateway }
          remove: [Server]
`;
  const bearer = `Authorization: Bearer ${token}`;
  return [
    ...ROUTING_WORKERS.map((workers) => ({
      name: "gateway routing-only",
      workers,
      body: routingOnly,
    })),
    {
      name: "gateway api-key + token bucket",
      workers: 1,
      header: `X-API-Key: ${BENCH_KEY}`,
      body: `
auth: { keys: { kind: api_key, header: X-API-Key } }
${consumers}
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users,
      auth: [keys], scopes: [read:users], rate_limit: ${TOKEN_BUCKET} }
`,
    },
    // With one isolate, and as deployed by default (one per core).
    ...[...new Set([1, navigator.hardwareConcurrency])].map((workers) => ({
      name: "gateway jwt + sliding window + transforms",
      workers,
      header: bearer,
      body: jwtFull,
    })),
    {
      name: "gateway jwt + sliding window + transforms (redis)",
      workers: 1,
      header: bearer,
      body: `store: { kind: redis, redis: { url: "${redisUrl}" } }${jwtFull}`,
    },
  ];
}

const GATEWAY_PORTS = 19500;
const ADMIN_PORTS = 19600;
const REDIS_PORT = 19700;

/** A redis-server for the configurations that use the Redis store. */
function startRedis(spawn: Spawn, requireFree: RequireFree): string {
  const port = REDIS_PORT;
  requireFree([port], "redis");
  spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", ""]);
  return `redis://127.0.0.1:${port}`;
}

export async function gatewayTargets(
  root: string,
  upstream: string,
  spawn: Spawn,
  cleanups: (() => Promise<void>)[],
  requireFree: RequireFree,
): Promise<BenchTarget[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-bench-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  const out: BenchTarget[] = [];
  const all = await configs(dir, startRedis(spawn, requireFree));
  requireFree(all.flatMap((_, i) => [GATEWAY_PORTS + i, ADMIN_PORTS + i]), "gateway");
  for (const [i, c] of all.entries()) {
    const port = GATEWAY_PORTS + i;
    const file = join(dir, `bench-${i}.yaml`);
    await Deno.writeTextFile(file, gatewayYaml(port, ADMIN_PORTS + i, upstream, c.body));
    const child = spawn(Deno.execPath(), [
      "run",
      "-A",
      V8_FLAGS_ARG,
      join(root, "main.ts"),
      "run",
      "--config",
      file,
      "--log-level",
      "warn",
      "--workers",
      String(c.workers),
    ]);
    out.push({
      name: `${c.name} --workers ${c.workers}`,
      url: `http://127.0.0.1:${port}${c.path ?? "/api/users/42"}`,
      ...(c.header ? { header: c.header, headers: headerRecord(c.header) } : {}),
      pid: () => child.pid,
    });
  }
  return out;
}

/** A bench gateway's whole config: one listener and the admin, no access log, `body` after. */
export function gatewayYaml(
  port: number,
  adminPort: number,
  upstream: string,
  body: string,
): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
observe: { access_log: { enabled: false } }
upstreams:
  users: { targets: [ { url: "${upstream}" } ] }
${body}`;
}

function headerRecord(header: string): Record<string, string> {
  const colon = header.indexOf(":");
  return { [header.slice(0, colon)]: header.slice(colon + 1).trim() };
}
