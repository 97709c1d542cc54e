/**
 * `kind: api_key`: a key in a header or a query parameter (the header wins;
 * both present and different is a 400). Keys are looked up by SHA-256 digest:
 * first those listed in the config, then those added through the admin API
 * (the credential store). The answer for each consumer is prepared once.
 */
import type { RequestContext } from "../core/context.ts";
import type { AuthConsumer, ConsumerTable } from "./consumers.ts";
import { CONFLICT, CredentialReader } from "./credentials.ts";
import { IdentityHeaders } from "./identity.ts";
import { keyDigest } from "./key_hash.ts";
import {
  AMBIGUOUS,
  type Authenticated,
  type AuthProvider,
  type AuthResult,
  refusal,
} from "./provider.ts";
import type { ApiKeyProviderConfig } from "./schema.ts";
import type { CredentialStore } from "./store.ts";

const UNKNOWN_KEY = refusal("invalid_api_key", "unknown_key");
/** A runtime key whose consumer the config no longer lists. */
const ORPHAN_KEY = refusal("invalid_api_key", "unknown_consumer");

export class ApiKeyProvider implements AuthProvider {
  readonly challenge: string;
  private readonly reader: CredentialReader;
  private readonly headers: IdentityHeaders;
  private readonly answers = new Map<AuthConsumer, Authenticated>();

  constructor(
    readonly name: string,
    cfg: ApiKeyProviderConfig,
    private readonly consumers: ConsumerTable,
    private readonly store: CredentialStore,
  ) {
    this.challenge = `ApiKey realm="${cfg.realm}", header="${cfg.header}"`;
    this.reader = new CredentialReader(cfg, false);
    this.headers = new IdentityHeaders(cfg.identity_headers);
  }

  authenticate(ctx: RequestContext): AuthResult | null {
    const key = this.reader.read(ctx);
    if (key === null) return null;
    if (key === CONFLICT) return AMBIGUOUS;
    const digest = keyDigest(key);
    let consumer = this.consumers.keyOwner(digest);
    if (consumer === undefined) {
      const id = this.store.keyOwner(digest);
      if (id === undefined) return UNKNOWN_KEY;
      consumer = this.consumers.get(id);
      if (consumer === undefined) return ORPHAN_KEY;
    }
    return this.answerFor(consumer);
  }

  stripCredentials(ctx: RequestContext): void {
    this.reader.strip(ctx);
  }

  private answerFor(consumer: AuthConsumer): Authenticated {
    let a = this.answers.get(consumer);
    if (!a) {
      a = this.headers.authenticated({
        provider: this.name,
        subject: consumer.id,
        scopes: consumer.scopes,
        claims: {},
      }, consumer);
      this.answers.set(consumer, a);
    }
    return a;
  }
}
