/**
 * Consumers (applications or teams) and their plans, compiled once per plan:
 * lookups by id, by token subject or certificate identity, and by key digest.
 */
import type { Consumer } from "../core/context.ts";
import type { GatewayConfig } from "../config/schema.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { malformedHashSpec, specDigest } from "./key_hash.ts";
import { NO_SCOPES } from "./identity.ts";

export interface AuthConsumer extends Consumer {
  /** Configured headers sent upstream with this consumer's requests. */
  readonly headers: readonly (readonly [string, string])[];
  /** False for a caller a provider vouches for but the config does not list. */
  readonly configured: boolean;
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
   * The consumer a verified subject (token claim, certificate identity) stands
   * for: the one that lists it in `subjects`, else an unlisted consumer with
   * that id, no plan and no configured scopes. Only an explicit `subjects`
   * entry confers a consumer's plan, scopes and headers: an identity provider
   * that lets users choose their `sub` cannot borrow a consumer by its id.
   */
  forSubject(subject: string): AuthConsumer {
    return this.bySubject.get(subject) ?? {
      id: subject,
      plan: null,
      scopes: NO_SCOPES,
      headers: [],
      configured: false,
    };
  }
}
