/**
 * Creating a JWT provider at plan build: its verification keys (a remote JWKS,
 * shared across reloads, or a local key set) and the provider. Loaded only when
 * a config names a JWT provider, so that jose stays out of gateways without one.
 */
import type { AuthProviderConfig } from "./schema.ts";
import type { BuildContext } from "../plan/build_context.ts";
import type { ConsumerTable } from "./consumers.ts";
import type { CredentialStore } from "./store.ts";
import { authRuntime } from "./runtime.ts";
import { JwtProvider } from "./jwt.ts";
import { type KeySource, RemoteJwks, StaticKeys } from "./jwks.ts";
import { KeySet } from "./key_set.ts";

type JwtConfig = Extract<AuthProviderConfig, { kind: "jwt" }>;

/** The JWT provider `name`, with its keys loaded; a local key that cannot be used stops the build. */
export async function createJwtProvider(
  b: BuildContext,
  name: string,
  cfg: JwtConfig,
  consumers: ConsumerTable,
  store: CredentialStore,
): Promise<JwtProvider> {
  const keys = await keySourceOf(b, name, cfg);
  return new JwtProvider(name, cfg, { keys, consumers, store, clock: b.deps.clock });
}

async function keySourceOf(b: BuildContext, name: string, cfg: JwtConfig): Promise<KeySource> {
  const at = (key: string) => ["auth", name, key];
  const algs = cfg.algorithms;
  if (cfg.jwks_url !== undefined) {
    const o = {
      url: cfg.jwks_url,
      algorithms: algs,
      timeoutMs: cfg.jwks_timeout_ms,
      minIntervalMs: cfg.jwks_refresh_min_interval_s * 1000,
      ttlMs: cfg.jwks_cache_ttl_s * 1000,
    };
    const jwks = authRuntime(b.deps).acquire(
      b,
      `jwks|${JSON.stringify(o)}`,
      () => new RemoteJwks(o, b.deps.clock, b.deps.logger),
    );
    jwks.prefetch();
    return jwks;
  }
  if (cfg.secret !== undefined) {
    const set = await KeySet.fromSecret(cfg.secret, algs);
    if (typeof set === "string") b.fail(at("secret"), set);
    return new StaticKeys(set);
  }
  const [key, file] = cfg.jwks_file !== undefined
    ? ["jwks_file", cfg.jwks_file]
    : ["public_key_file", cfg.public_key_file!];
  let text: string;
  try {
    text = await b.readTextFile(file);
  } catch (e) {
    b.fail(at(key), `cannot read ${file}: ${(e as Error).message}`);
  }
  let set: KeySet;
  if (key === "jwks_file") {
    try {
      set = (await KeySet.fromJwks(JSON.parse(text), algs)).set;
    } catch (e) {
      b.fail(at(key), `${file} is not a JWKS document: ${(e as Error).message}`);
    }
  } else {
    set = await KeySet.fromPem(text, algs);
  }
  if (set.size === 0) {
    b.fail(at(key), `${file} holds no key usable with the algorithms ${algs.join(", ")}`);
  }
  return new StaticKeys(set);
}
