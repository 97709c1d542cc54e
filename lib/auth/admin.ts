/**
 * Admin endpoints for credentials that change without a reload:
 *
 *   GET    /keys                    keys by digest and consumer (never the keys)
 *   POST   /keys                    {"consumer", "key"?}: 201; a key is generated when omitted
 *   DELETE /keys/{key-or-sha256}    204; the key itself, `sha256:<hex>` or the bare digest
 *   POST   /revocations             {"jti", "exp"}: 201; refused until `exp` (Unix seconds)
 *
 * Changes go to the credential store: this instance alone with `store.kind:
 * memory`, every instance within a second with Redis.
 */
import type { Gateway } from "../server/gateway.ts";
import { json, readJsonObject } from "../server/admin.ts";
import { type ErrorCode, errorResponse, isGatewayError } from "../core/errors.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { keyDigest, malformedHashSpec, specDigest } from "./key_hash.ts";
import { authRuntime } from "./runtime.ts";
import type { CredentialStore } from "./store.ts";

const HEX_DIGEST = /^[0-9a-f]{64}$/;
/** What a header value can carry: visible ASCII, no separators that would split it. */
const KEY_TEXT = /^[\x21-\x7e]{1,512}$/;

function fail(code: ErrorCode, message: string): Response {
  return errorResponse(code, crypto.randomUUID(), { message });
}

export function registerAuthAdmin(gw: Gateway): void {
  const current = (): { config: GatewayConfig; store: CredentialStore } | Response => {
    const config = gw.holder.current?.config;
    const store = config && authRuntime(gw.deps).currentStore(config.store);
    if (!config || !store) {
      return fail("bad_request", "The configuration defines no consumers or auth providers");
    }
    return { config, store };
  };
  const currentWithBody = async (req: Request) => {
    const c = current();
    if (c instanceof Response) return c;
    const body = await readJsonObject(req);
    return body instanceof Response ? body : { ...c, body };
  };

  gw.admin.add("GET", "/keys", () => {
    const c = current();
    if (c instanceof Response) return c;
    const keys = [
      ...c.config.consumers.flatMap((x) =>
        x.api_keys.map((k) => ({ sha256: specDigest(k), consumer: x.id, source: "config" }))
      ),
      ...[...c.store.keys()].map(([sha256, consumer]) => ({ sha256, consumer, source: "store" })),
    ];
    return json({ store: c.store.kind, keys });
  });

  gw.admin.add("POST", "/keys", async (req) => {
    const c = await currentWithBody(req);
    if (c instanceof Response) return c;
    const { consumer, key } = c.body;
    if (typeof consumer !== "string" || !c.config.consumers.some((x) => x.id === consumer)) {
      return fail("bad_request", `Expected "consumer": the id of a consumer in the config`);
    }
    if (key !== undefined && (typeof key !== "string" || !KEY_TEXT.test(key))) {
      return fail("bad_request", `Expected "key": 1 to 512 visible ASCII characters`);
    }
    if (typeof key === "string" && malformedHashSpec(key)) {
      return fail("bad_request", `Expected "key": sha256: followed by 64 hex digits`);
    }
    const generated = key === undefined ? newKey() : null;
    const digest = generated !== null ? keyDigest(generated) : specDigest(key as string);
    const owner = ownerOf(c.config, c.store, digest);
    if (owner !== null && owner.consumer !== consumer) {
      return fail("bad_request", "This key is already registered for another consumer");
    }
    if (owner?.source !== "config") {
      const failed = await storeFailure(() => c.store.addKey(digest, consumer));
      if (failed) return failed;
      // A reload that dropped the consumer while this was written has swept its keys
      // already: this one must go the same way, not outlive its consumer.
      if (!gw.holder.current?.config.consumers.some((x) => x.id === consumer)) {
        await storeFailure(() => c.store.removeKey(digest));
        return fail("bad_request", `Consumer "${consumer}" was removed from the config`);
      }
    }
    return json(
      { consumer, sha256: digest, ...(generated !== null ? { key: generated } : {}) },
      201,
    );
  });

  gw.admin.add("DELETE", "/keys/{key}", async (_req, params) => {
    const c = current();
    if (c instanceof Response) return c;
    const given = params.key!;
    const digests = given.startsWith("sha256:")
      ? [specDigest(given)]
      : HEX_DIGEST.test(given)
      ? [keyDigest(given), given]
      : [keyDigest(given)];
    for (const digest of digests) {
      const owner = ownerOf(c.config, c.store, digest);
      if (owner === null) continue;
      if (owner.source === "config") {
        return fail(
          "bad_request",
          `This key is listed in the config for consumer "${owner.consumer}": remove it there and reload`,
        );
      }
      const failed = await storeFailure(() => c.store.removeKey(digest));
      if (failed) return failed;
      return new Response(null, { status: 204 });
    }
    return errorResponse("key_not_found", crypto.randomUUID());
  });

  gw.admin.add("POST", "/revocations", async (req) => {
    const c = await currentWithBody(req);
    if (c instanceof Response) return c;
    const { jti, exp } = c.body;
    if (typeof jti !== "string" || jti === "") {
      return fail("bad_request", `Expected "jti": the token id to revoke`);
    }
    if (typeof exp !== "number" || !Number.isFinite(exp) || exp <= 0) {
      return fail("bad_request", `Expected "exp": the token's expiry in Unix seconds`);
    }
    // A provider accepts a token up to its clock skew past `exp`: the revocation lasts as long.
    const until = exp + longestClockSkewS(c.config);
    if (until * 1000 <= gw.deps.clock.now()) {
      return json({ jti, exp, revoked: false, reason: "the token has already expired" }, 200);
    }
    const failed = await storeFailure(() => c.store.revoke(jti, until));
    if (failed) return failed;
    return json({ jti, exp, revoked: true }, 201);
  });
}

/** The longest time past `exp` any JWT provider still accepts a token (seconds). */
function longestClockSkewS(config: GatewayConfig): number {
  let longest = 0;
  for (const p of Object.values(config.auth)) {
    if (p.kind === "jwt") longest = Math.max(longest, p.clock_skew_s);
  }
  return longest;
}

function ownerOf(
  config: GatewayConfig,
  store: CredentialStore,
  digest: string,
): { consumer: string; source: "config" | "store" } | null {
  for (const x of config.consumers) {
    if (x.api_keys.some((k) => specDigest(k) === digest)) {
      return { consumer: x.id, source: "config" };
    }
  }
  const consumer = store.keyOwner(digest);
  return consumer === undefined ? null : { consumer, source: "store" };
}

/** Runs a store write; a store that cannot be reached is a 503. */
async function storeFailure(write: () => Promise<unknown>): Promise<Response | null> {
  try {
    await write();
    return null;
  } catch (e) {
    if (isGatewayError(e)) return errorResponse(e.code, crypto.randomUUID());
    throw e;
  }
}

/** A new key: 32 random bytes, base64url. */
function newKey(): string {
  return crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}
