/**
 * Where a JWT provider finds its verification keys. A local key set (file,
 * PEM, secret) is fixed at load; a remote JWKS is cached and refreshed:
 *
 * - in the background once older than `jwks_cache_ttl_s`;
 * - at once when a token names a kid the cache does not hold (a rotation),
 *   but at most once per `jwks_refresh_min_interval_s`, so a flood of tokens
 *   with made-up kids costs the identity provider one request per interval;
 * - concurrent refreshes share one fetch, and a failed fetch keeps the last
 *   good key set (the identity provider being down does not log anyone out).
 */
import type { Clock } from "../core/clock.ts";
import { errorFields, type Logger } from "../observe/logger.ts";
import { KeySet } from "./key_set.ts";
import { answerText } from "./answer_body.ts";
import type { JwtAlgorithm } from "./schema.ts";

/**
 * The largest JWKS document read. Real ones are a few KiB (a key is under
 * 2 KiB even at RSA-4096); a larger answer is a failed fetch.
 */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** Keys that may verify a token, or why there are none. */
export type KeyLookup = readonly CryptoKey[] | "unknown" | "unavailable";

export interface KeySource {
  /** Changes whenever the key set does: tokens verified before must be verified again. */
  readonly generation: number;
  keysFor(kid: string | undefined, alg: string): KeyLookup | Promise<KeyLookup>;
}

export class StaticKeys implements KeySource {
  readonly generation = 0;
  constructor(private readonly set: KeySet) {}
  keysFor(kid: string | undefined, alg: string): KeyLookup {
    const found = this.set.candidates(kid, alg);
    return found?.length ? found : "unknown";
  }
}

export interface RemoteJwksOptions {
  url: string;
  algorithms: readonly JwtAlgorithm[];
  timeoutMs: number;
  minIntervalMs: number;
  ttlMs: number;
}

export class RemoteJwks implements KeySource {
  generation = 0;
  private keys: KeySet | null = null;
  /** Body of the last document imported: an unchanged document is not imported again. */
  private lastBody = "";
  private fetchedAt = -Infinity;
  private lastAttempt = -Infinity;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly o: RemoteJwksOptions,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Starts the first fetch, so that the first request does not pay for it. */
  prefetch(): void {
    if (this.keys === null && this.inflight === null) void this.refresh();
  }

  keysFor(kid: string | undefined, alg: string): KeyLookup | Promise<KeyLookup> {
    const now = this.clock.now();
    const mayFetch = now - this.lastAttempt >= this.o.minIntervalMs;
    if (this.keys === null) {
      if (this.inflight) return this.inflight.then(() => this.lookup(kid, alg));
      return mayFetch ? this.refresh().then(() => this.lookup(kid, alg)) : "unavailable";
    }
    if (mayFetch && this.inflight === null && now - this.fetchedAt >= this.o.ttlMs) {
      void this.refresh();
    }
    const found = this.keys.candidates(kid, alg);
    if (found !== null) return found.length ? found : "unknown";
    if (this.inflight) return this.inflight.then(() => this.lookup(kid, alg));
    return mayFetch ? this.refresh().then(() => this.lookup(kid, alg)) : "unknown";
  }

  private lookup(kid: string | undefined, alg: string): KeyLookup {
    if (this.keys === null) return "unavailable";
    const found = this.keys.candidates(kid, alg);
    return found?.length ? found : "unknown";
  }

  private refresh(): Promise<void> {
    this.lastAttempt = this.clock.now();
    const p = this.load().finally(() => {
      if (this.inflight === p) this.inflight = null;
    });
    return this.inflight = p;
  }

  private async load(): Promise<void> {
    const { url } = this.o;
    try {
      const res = await fetch(url, {
        headers: { accept: "application/jwk-set+json, application/json" },
        signal: AbortSignal.timeout(this.o.timeoutMs),
        // The keys decide who gets in: they come from the URL the config names, not from
        // wherever it points (jose's remote key sets do not follow redirects either).
        redirect: "manual",
      });
      if (!res.ok) {
        await res.body?.cancel();
        const location = res.headers.get("location");
        throw new Error(
          location === null
            ? `the JWKS endpoint answered ${res.status}`
            : `the JWKS endpoint answered ${res.status} to ${location}, which is not followed: jwks_url must name the key set itself`,
        );
      }
      const body = await answerText(res, MAX_JWKS_BYTES, "JWKS document");
      if (body !== this.lastBody) {
        const { set, skipped } = await KeySet.fromJwks(JSON.parse(body), this.o.algorithms);
        if (skipped.length) {
          this.logger.every(`jwks-skipped:${url}`, 60_000, "warn", "JWKS keys skipped", {
            url,
            skipped,
          });
        }
        if (set.size === 0) throw new Error("the JWKS holds no key usable with the algorithms");
        this.keys = set;
        this.lastBody = body;
        this.generation++;
      }
      this.fetchedAt = this.clock.now();
    } catch (e) {
      this.logger.every(
        `jwks:${url}`,
        10_000,
        "warn",
        "JWKS fetch failed; the last good keys stay in use",
        { url, cached_keys: this.keys?.size ?? 0, ...errorFields(e) },
      );
    }
  }
}
