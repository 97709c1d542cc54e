/**
 * The auth part of a plan, compiled once and shared by every route: the
 * consumer table, the credential store, the providers (created when a route
 * first names them, with their key material loaded), and which identity
 * headers clients may not send.
 */
import type { AuthProviderConfig } from "./schema.ts";
import type { BuildContext } from "../plan/build_context.ts";
import type { RequestContext } from "../core/context.ts";
import { ConsumerTable } from "./consumers.ts";
import { IdentityHeaders } from "./identity.ts";
import { compileIdentityStrip } from "./policy.ts";
import type { AuthProvider } from "./provider.ts";
import type { CredentialStore } from "./store.ts";
import { authRuntime } from "./runtime.ts";
import { ApiKeyProvider } from "./api_key.ts";
import { JwtProvider } from "./jwt.ts";
import { IntrospectionProvider } from "./introspection.ts";
import { MtlsProvider } from "./mtls.ts";
import { type KeySource, RemoteJwks, StaticKeys } from "./jwks.ts";
import { KeySet } from "./key_set.ts";

export interface AuthPlan {
  readonly consumers: ConsumerTable;
  readonly store: CredentialStore;
  /** Removes client-sent identity headers; null when the config defines none. */
  readonly stripIdentity: ((ctx: RequestContext) => void) | null;
}

/** The plan's auth state; null when the config has neither auth providers nor consumers. */
export function authPlanOf(b: BuildContext): Promise<AuthPlan | null> {
  return b.shared("auth:plan", async () => {
    const c = b.config;
    if (Object.keys(c.auth).length === 0 && c.consumers.length === 0) return null;
    const consumers = new ConsumerTable(c, b);
    const store = await authRuntime(b.deps).store(b);
    const names = new Set(consumers.headerNames);
    for (const p of Object.values(c.auth)) {
      for (const n of identityHeadersOf(p).names) names.add(n);
    }
    return {
      consumers,
      store,
      stripIdentity: names.size ? compileIdentityStrip([...names]) : null,
    };
  });
}

function identityHeadersOf(p: AuthProviderConfig): IdentityHeaders {
  return new IdentityHeaders(
    p.identity_headers,
    "claims_to_headers" in p ? p.claims_to_headers : {},
  );
}

/** The provider named `name` in `auth:`, created once per plan. */
export function providerOf(b: BuildContext, name: string, plan: AuthPlan): Promise<AuthProvider> {
  return b.shared(`auth:provider:${name}`, async (): Promise<AuthProvider> => {
    const cfg = b.config.auth[name]!;
    const { consumers, store } = plan;
    const deps = b.deps;
    switch (cfg.kind) {
      case "api_key":
        return new ApiKeyProvider(name, cfg, consumers, store);
      case "jwt": {
        const keys = await keySourceOf(b, name, cfg);
        return new JwtProvider(name, cfg, { keys, consumers, store, clock: deps.clock });
      }
      case "oauth2_introspection":
        return new IntrospectionProvider(name, cfg, {
          consumers,
          clock: deps.clock,
          logger: deps.logger,
        });
      case "mtls":
        return new MtlsProvider(name, cfg, consumers);
    }
  });
}

type JwtConfig = Extract<AuthProviderConfig, { kind: "jwt" }>;

/** Loads a JWT provider's keys; a local key that cannot be used stops the build. */
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
    text = await Deno.readTextFile(b.resolvePath(file));
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
