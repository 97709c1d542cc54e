/**
 * Consumers (applications or teams) and their plans, compiled once per plan:
 * lookups by id, by token subject or certificate identity, and by key digest.
 * A subject no consumer lists stands for an unlisted consumer whose id is
 * `<provider>:<subject>`; ids of that form are reserved at load, so such a
 * caller never shares an id (and with it cache entries, rate-limit counters,
 * X-Consumer-Id) with a configured consumer or another provider's subject.
 */
import type { Consumer } from "../core/context.ts";
import type { GatewayConfig } from "../config/schema.ts";
import type { AuthProviderConfig } from "./schema.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { malformedHashSpec, specDigest } from "./key_hash.ts";
import { NO_SCOPES } from "./identity.ts";

export interface AuthConsumer extends Consumer {
  /** Configured headers sent upstream with this consumer's requests. */
  readonly headers: readonly (readonly [string, string])[];
}

export class ConsumerTable {
  private readonly byId = new Map<string, AuthConsumer>();
  private readonly bySubject = new Map<string, AuthConsumer>();
  /** Key digest -> consumer, for keys listed in the config. */
  private readonly keyOwners = new Map<string, AuthConsumer>();
  /** Names of every configured consumer header (lower-case), stripped from clients. */
  readonly headerNames: readonly string[];

  constructor(config: GatewayConfig, b: BuildContext) {
    const headerNames = new Set<string>();
    config.consumers.forEach((c, i) => {
      const consumer: AuthConsumer = {
        id: c.id,
        plan: c.plan ?? null,
        scopes: c.scopes.length ? new Set(c.scopes) : NO_SCOPES,
        headers: Object.entries(c.headers),
        configured: true,
      };
      for (const h of Object.keys(c.headers)) headerNames.add(h.toLowerCase());
      this.byId.set(c.id, consumer);
      for (const s of c.subjects) this.bySubject.set(s, consumer);
      c.api_keys.forEach((spec, j) => {
        const path = ["consumers", i, "api_keys", j];
        if (malformedHashSpec(spec)) b.fail(path, "expected sha256: followed by 64 hex digits");
        const digest = specDigest(spec);
        const owner = this.keyOwners.get(digest);
        if (owner) {
          b.fail(
            path,
            owner === consumer
              ? "this key is listed twice"
              : `this key also belongs to consumer "${owner.id}": a key identifies one consumer`,
          );
        }
        this.keyOwners.set(digest, consumer);
      });
    });
    this.headerNames = [...headerNames];
    refuseReservedIds(config, b);
  }

  get(id: string): AuthConsumer | undefined {
    return this.byId.get(id);
  }

  /** Owner of a key listed in the config, by digest. */
  keyOwner(digest: string): AuthConsumer | undefined {
    return this.keyOwners.get(digest);
  }

  /** Digests of the keys listed in the config, with their consumers. */
  configKeys(): IterableIterator<[string, AuthConsumer]> {
    return this.keyOwners.entries();
  }

  /**
   * The consumer a subject (token claim, certificate identity) verified by
   * `provider` stands for: the one that lists it in `subjects`, else an
   * unlisted consumer `<provider>:<subject>` with no plan and no configured
   * scopes. Only an explicit `subjects` entry confers a consumer: an identity
   * provider that lets users choose their `sub` cannot borrow one by its id.
   */
  forSubject(provider: string, subject: string): AuthConsumer {
    return this.bySubject.get(subject) ?? {
      id: unlistedId(provider, subject),
      plan: null,
      scopes: NO_SCOPES,
      headers: [],
      configured: false,
    };
  }
}

function unlistedId(provider: string, subject: string): string {
  return `${provider}:${subject}`;
}

/** Providers whose callers may be subjects no consumer lists (an API key always names one). */
function subjectProviders(config: GatewayConfig): string[] {
  return Object.entries(config.auth)
    .filter(([, p]: [string, AuthProviderConfig]) => p.kind !== "api_key")
    .map(([name]) => name);
}

/**
 * Stops the load when a consumer id, or another provider's unlisted ids, could
 * equal an unlisted consumer's id: `<provider>:` starts only the latter.
 */
function refuseReservedIds(config: GatewayConfig, b: BuildContext): void {
  const providers = subjectProviders(config);
  const reserving = (id: string, except?: string) =>
    providers.find((p) => p !== except && id.startsWith(unlistedId(p, "")));
  config.consumers.forEach((c, i) => {
    const p = reserving(c.id);
    if (p !== undefined) {
      b.fail(
        ["consumers", i, "id"],
        `ids starting with "${p}:" are reserved for subjects of provider "${p}" that no consumer lists`,
      );
    }
  });
  for (const name of providers) {
    const p = reserving(unlistedId(name, ""), name);
    if (p !== undefined) {
      b.fail(
        ["auth", name],
        `a provider name must not start with "${p}:": unlisted subjects of both could share an id`,
      );
    }
  }
}
