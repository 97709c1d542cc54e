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

async function configs(dir: string): Promise<GatewayConfig[]> {
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

export async function gatewayTargets(
  root: string,
  spawn: Spawn,
  cleanups: (() => Promise<void>)[],
): Promise<BenchTarget[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-bench-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  const out: BenchTarget[] = [];
  for (const [i, c] of (await configs(dir)).entries()) {
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
