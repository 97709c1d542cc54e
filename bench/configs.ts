/**
 * The gateway configurations `deno task bench` loads, each a separate gateway
 * process on its own port, in front of the anchors' upstream (nginx on 9001).
 */
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export interface BenchTarget {
  name: string;
  url: string;
  /** One `Name: value` header for wrk. */
  header?: string;
  headers?: Record<string, string>;
  /** Process to sample RSS from. */
  pid?: () => number | undefined;
}

type Spawn = (cmd: string, args: string[], env?: Record<string, string>) => Deno.ChildProcess;

const UPSTREAM = "http://127.0.0.1:9001";

interface GatewayConfig {
  name: string;
  /** Routes and sections after listeners/admin/upstreams. */
  body: string;
  path?: string;
  header?: string;
  args?: string[];
}

/** A limit on every request that never refuses (one client, one hot key): its cost alone. */
const EVERY_REQUEST_LIMITED = `
routes:
  - name: users
    match: { path: /api/users }
    strip_prefix: true
    upstream: users
    rate_limit: { algorithm: token_bucket, rate: 1000000000, per: 1s }
`;

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

async function configs(dir: string, redisUrl: string): Promise<GatewayConfig[]> {
  const { jwksFile, token } = await jwtMaterial(dir);
  const consumers = `consumers:
  - { id: bench-app, api_keys: ["${BENCH_KEY}"], subjects: [bench-user], scopes: [read:users] }`;
  return [
    {
      name: "gateway routing-only",
      body: `
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users }
`,
    },
    { name: "gateway rate-limited (memory)", body: EVERY_REQUEST_LIMITED },
    {
      name: "gateway rate-limited (redis)",
      body: `store: { kind: redis, redis: { url: "${redisUrl}" } }${EVERY_REQUEST_LIMITED}`,
    },
    {
      // Two isolates on one port (SO_REUSEPORT): against routing-only, what a second core buys.
      name: "gateway routing-only --workers 2",
      body: `
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users }
`,
      args: ["--workers", "2"],
    },
    {
      // Decisions cross to the main thread: against rate-limited (memory), the cost of sharing.
      name: "gateway rate-limited (memory) --workers 2",
      body: EVERY_REQUEST_LIMITED,
      args: ["--workers", "2"],
    },
    {
      name: "gateway api-key",
      header: `X-API-Key: ${BENCH_KEY}`,
      body: `
auth: { keys: { kind: api_key, header: X-API-Key } }
${consumers}
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users,
      auth: [keys], scopes: [read:users] }
`,
    },
    {
      name: "gateway jwt-rs256",
      header: `Authorization: Bearer ${token}`,
      body: `
auth:
  bearer: { kind: jwt, jwks_file: "${jwksFile}", issuer: https://idp.bench, audience: bench,
            algorithms: [RS256] }
${consumers}
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users,
      auth: [bearer], scopes: [read:users] }
`,
    },
  ];
}

/** A redis-server for the configurations that use the Redis store. */
function startRedis(spawn: Spawn): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", ""]);
  return `redis://127.0.0.1:${port}`;
}

export async function gatewayTargets(
  root: string,
  spawn: Spawn,
  cleanups: (() => Promise<void>)[],
): Promise<BenchTarget[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-bench-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  const out: BenchTarget[] = [];
  for (const [i, c] of (await configs(dir, startRedis(spawn))).entries()) {
    const port = 9500 + i;
    const file = join(dir, `bench-${i}.yaml`);
    await Deno.writeTextFile(
      file,
      `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${9600 + i} }
observe: { access_log: { enabled: false } }
upstreams:
  users: { targets: [ { url: "${UPSTREAM}" } ] }
${c.body}`,
    );
    const child = spawn(Deno.execPath(), [
      "run",
      "-A",
      join(root, "main.ts"),
      "run",
      "--config",
      file,
      "--log-level",
      "warn",
      ...(c.args ?? []),
    ]);
    out.push({
      name: c.name,
      url: `http://127.0.0.1:${port}${c.path ?? "/api/users/42"}`,
      ...(c.header ? { header: c.header, headers: headerRecord(c.header) } : {}),
      pid: () => child.pid,
    });
  }
  return out;
}

function headerRecord(header: string): Record<string, string> {
  const colon = header.indexOf(":");
  return { [header.slice(0, colon)]: header.slice(colon + 1).trim() };
}
