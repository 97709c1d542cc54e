/**
 * Consumers (applications or teams) and their plans, compiled once per plan:
 * lookups by id, by token subject or certificate identity, and by key digest.
 * A subject no consumer lists stands for an unlisted consumer whose id is
 * `<provider>:<subject>`; ids of that form are reserved at load, so such a
 * caller never shares an id (and with it cache entries, rate-limit counters,
 * X-Consumer-Id) with a configured consumer or another provider's subject.
 *
 * A `subjects` entry written the same way, `<provider>:<identity>`, maps only
 * that provider's caller; a bare one maps every identity provider's caller
 * with that identity. Each provider gets one map, compiled here, holding both.
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

/**
 * The subjects one identity provider maps to consumers: its qualified entries
 * (`<provider>:<identity>`) over the bare ones. A request costs one lookup.
 */
export class ProviderSubjects {
  constructor(
    private readonly provider: string,
    private readonly listed: ReadonlyMap<string, AuthConsumer>,
  ) {}

  /**
   * The consumer a subject (token claim, certificate identity) verified by
   * the provider stands for: the one that lists it in `subjects`, else an
   * unlisted consumer `<provider>:<subject>` with no plan and no configured
   * scopes. Only an explicit `subjects` entry confers a consumer: an identity
   * provider that lets users choose their `sub` cannot borrow one by its id.
   */
  forSubject(subject: string): AuthConsumer {
    return this.listed.get(subject) ?? {
      id: unlistedId(this.provider, subject),
      plan: null,
      scopes: NO_SCOPES,
      headers: [],
      configured: false,
    };
  }
}

export class ConsumerTable {
  private readonly byId = new Map<string, AuthConsumer>();
  /** Bare subjects, for every identity provider. */
  private readonly bare = new Map<string, AuthConsumer>();
  /** Per identity provider: its qualified subjects over the bare ones. */
  private readonly byProvider = new Map<string, ProviderSubjects>();
  /** Key digest -> consumer, for keys listed in the config. */
  private readonly keyOwners = new Map<string, AuthConsumer>();
  /** Names of every configured consumer header (lower-case), stripped from clients. */
  readonly headerNames: readonly string[];

  constructor(config: GatewayConfig, b: BuildContext) {
    refuseReservedIds(config, b);
    const providers = subjectProviders(config);
    const qualified = new Map(providers.map((p) => [p, new Map<string, AuthConsumer>()]));
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
      c.subjects.forEach((entry, j) => {
        const s = parseSubject(entry, providers);
        if (s.provider === null) {
          this.bare.set(s.identity, consumer);
          if (providers.length > 1) warnBareSubject(b, c.id, entry, [i, j], providers);
        } else if (s.identity === "") {
          b.fail(
            ["consumers", i, "subjects", j],
            `expected an identity after "${s.provider}:" (a subject of provider "${s.provider}")`,
          );
        } else qualified.get(s.provider)!.set(s.identity, consumer);
      });
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
    for (const [p, own] of qualified) {
      this.byProvider.set(p, new ProviderSubjects(p, new Map([...this.bare, ...own])));
    }
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

  /** The subjects `provider` (a `jwt`, `oauth2_introspection` or `mtls` provider) maps. */
  subjectsOf(provider: string): ProviderSubjects {
    return this.byProvider.get(provider) ?? new ProviderSubjects(provider, this.bare);
  }
}

/**
 * How a `subjects` entry reads. `<provider>:<identity>` when it starts with the
 * name of one of the config's identity providers and a colon not followed by
 * `//`; otherwise bare, its whole text the identity. The name is unambiguous:
 * no provider name starts with another's and a colon (refuseReservedIds). A
 * URI whose scheme is a provider's name (`spiffe://...` beside a provider
 * `spiffe`) stays bare, as it read before qualified entries existed; that
 * provider's own is written `spiffe:spiffe://...`.
 */
export function parseSubject(
  entry: string,
  providers: readonly string[],
): { provider: string | null; identity: string } {
  for (const p of providers) {
    if (entry.startsWith(p) && entry[p.length] === ":" && !entry.startsWith("//", p.length + 1)) {
      return { provider: p, identity: entry.slice(p.length + 1) };
    }
  }
  return { provider: null, identity: entry };
}

/**
 * A bare subject with several identity providers maps whichever of them
 * vouches for that identity: a partner IdP's `sub` would borrow the consumer.
 * Loads (it may be meant), with a warning naming the qualified forms.
 */
function warnBareSubject(
  b: BuildContext,
  consumer: string,
  subject: string,
  at: [number, number],
  providers: readonly string[],
): void {
  b.deps.logger.warn(
    "a bare subject maps the callers of every identity provider to its consumer",
    {
      consumer,
      subject,
      at: `consumers[${at[0]}].subjects[${at[1]}]`,
      providers,
      hint: `write ${providers.map((p) => `"${p}:${subject}"`).join(" or ")} ` +
        "to accept it from one provider only",
    },
  );
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
