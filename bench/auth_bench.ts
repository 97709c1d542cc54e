/**
 * CPU cost of the auth policy per request, without the network:
 * `deno bench -A bench/auth_bench.ts`. Each case builds a fresh request
 * context (as the server does) and runs one route's auth policy on it; the
 * `context only` case is that construction alone, the baseline to subtract.
 * Complements `deno task bench`, whose wrk ratios drown in noise on a busy
 * machine.
 */
import { generateKeyPair, SignJWT } from "jose";
import { parseConfig } from "../lib/config/load.ts";
import { BuildContext } from "../lib/plan/build_context.ts";
import { authStage } from "../lib/auth/stage.ts";
import { RequestContext } from "../lib/core/context.ts";
import { HeaderEdits } from "../lib/proxy/header_edits.ts";
import { parseTraceparent } from "../lib/observe/trace.ts";
import { silentLogger } from "../lib/observe/logger.ts";
import { PoolRegistry } from "../lib/proxy/pools.ts";
import { RedisConnections } from "../lib/store/redis.ts";
import { systemClock } from "../lib/core/clock.ts";
import type { Policy } from "../lib/core/pipeline.ts";

const dir = await Deno.makeTempDir({ prefix: "gw-auth-bench-" });
const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
await Deno.writeTextFile(
  `${dir}/key.pem`,
  await import("jose").then((j) => j.exportSPKI(publicKey)),
);
const token = await new SignJWT({ sub: "bench-user", scope: "read write" })
  .setProtectedHeader({ alg: "RS256" })
  .setIssuer("https://idp.bench").setAudience("bench").setExpirationTime("2h")
  .sign(privateKey);
const apiKey = "bench-key-0123456789abcdef";

const loaded = await parseConfig(
  `upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
auth:
  keys: { kind: api_key }
  bearer: { kind: jwt, public_key_file: ${dir}/key.pem, issuer: https://idp.bench, audience: bench }
consumers:
  - { id: bench-app, api_keys: ["${apiKey}"], subjects: [bench-user] }
routes:
  - { name: public, match: { path: /p }, upstream: up }
  - { name: key, match: { path: /k }, upstream: up, auth: [keys] }
  - { name: jwt, match: { path: /j }, upstream: up, auth: [bearer], scopes: [read] }
`,
  `${dir}/gateway.yaml`,
  () => undefined,
);
const deps = {
  clock: systemClock,
  logger: silentLogger,
  pools: new PoolRegistry(),
  redis: new RedisConnections(silentLogger),
};
const b = new BuildContext(loaded.config, deps, loaded.source, dir, new Map());
const [publicPolicy, keyPolicy, jwtPolicy] = await Promise.all(
  loaded.config.routes.map(async (r, i) => (await authStage.build(r, i, b))[0]!.policy),
) as [Policy, Policy, Policy];

const headers = {
  accept: "*/*",
  "user-agent": "wrk",
  host: "127.0.0.1:8080",
};
const keyRequest = new Request("http://127.0.0.1:8080/k/42", {
  headers: { ...headers, "x-api-key": apiKey },
});
const jwtRequest = new Request("http://127.0.0.1:8080/j/42", {
  headers: { ...headers, authorization: `Bearer ${token}` },
});
const plainRequest = new Request("http://127.0.0.1:8080/p/42", { headers });

function context(req: Request): RequestContext {
  return new RequestContext(
    req,
    "GET",
    "/x/42",
    "",
    "127.0.0.1",
    "127.0.0.1",
    "127.0.0.1",
    { name: "public", tls: false },
    Date.now(),
    performance.now(),
    "req",
    parseTraceparent(null, null),
    new HeaderEdits(),
  );
}

const OK = new Response("ok");
const next = () => OK;
// Warm the verified-token cache: the benchmark measures a client reusing its token.
const warm = await jwtPolicy(context(jwtRequest), next);
if (warm.status !== 200) throw new Error(`the JWT route answered ${warm.status}`);

Deno.bench("context only (baseline)", { baseline: true }, () => {
  context(keyRequest);
});
Deno.bench("public route: strip identity headers", () => {
  publicPolicy(context(plainRequest), next);
});
Deno.bench("api key", () => {
  keyPolicy(context(keyRequest), next);
});
Deno.bench("jwt RS256, verified token cached", () => {
  jwtPolicy(context(jwtRequest), next);
});
