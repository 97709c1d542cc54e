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
import { type CredentialStore, logDeletedKeys } from "./store.ts";
import { errorFields, type Logger } from "../observe/logger.ts";
import { authRuntime } from "./runtime.ts";
import { ApiKeyProvider } from "./api_key.ts";
import { IntrospectionProvider } from "./introspection.ts";
import { MtlsProvider } from "./mtls.ts";
import { watchTokenCache } from "./cache_metrics.ts";

export interface AuthPlan {
  readonly consumers: ConsumerTable;
  readonly store: CredentialStore;
  /** Removes client-sent identity headers; null when the config defines none. */
  readonly stripIdentity: ((ctx: RequestContext) => void) | null;
}

/**
 * The identity headers' default names (README, "Identity to the upstream"),
 * removed from clients even where no provider sends one (API keys send no
 * X-User-Id): an upstream that trusts them must not get a client's.
 */
const DEFAULT_IDENTITY_HEADERS = ["x-consumer-id", "x-user-id", "x-user-scopes"];

/** The plan's auth state; null when the config has neither auth providers nor consumers. */
export function authPlanOf(b: BuildContext): Promise<AuthPlan | null> {
  return b.shared("auth:plan", async () => {
    const c = b.config;
    if (Object.keys(c.auth).length === 0 && c.consumers.length === 0) return null;
    const consumers = new ConsumerTable(c, b);
    const runtime = authRuntime(b.deps);
    const store = await runtime.store(b);
    // A runtime key names its consumer by id: it must go with the consumer, or a
    // later config reusing the id would hand it to whoever the id then names.
    const listed = new Set(c.consumers.map((x) => x.id));
    b.onActivate(() =>
      void dropRemoved(store, runtime.consumersRemoved(listed), listed, b.deps.logger)
    );
    const names = new Set([...consumers.headerNames, ...DEFAULT_IDENTITY_HEADERS]);
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

/** Deletes the runtime keys of the consumers a reload removed. */
async function dropRemoved(
  store: CredentialStore,
  removed: ReadonlySet<string>,
  listed: ReadonlySet<string>,
  logger: Logger,
): Promise<void> {
  try {
    logDeletedKeys(logger, await store.dropConsumers(removed, listed));
  } catch (e) {
    // A Redis store deletes them once it is reachable again (after its mirror reloads).
    logger.warn("cannot delete the runtime API keys of consumers removed from the config yet", {
      store: store.kind,
      ...errorFields(e),
    });
  }
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
        // jose and the key handling load only with a config that verifies JWTs.
        const { createJwtProvider } = await import("./jwt_build.ts");
        return await createJwtProvider(b, name, cfg, consumers, store);
      }
      case "oauth2_introspection": {
        const p = new IntrospectionProvider(name, cfg, {
          consumers,
          clock: deps.clock,
          logger: deps.logger,
        });
        await watchTokenCache(b, p);
        return p;
      }
      case "mtls":
        return new MtlsProvider(name, cfg, consumers);
    }
  });
}
