/**
 * API keys are stored and compared as SHA-256 digests, never as plain text:
 * config values may be plain (from `${ENV}`) or `sha256:<hex>`, and the admin
 * API accepts either. Keys are found by digest in a hash table: whatever its
 * timing reveals is about the digest of the caller's own input, which the
 * caller cannot steer toward a stored key, so no byte-wise comparison of a
 * secret ever happens (the reason string compares of keys are unsafe).
 */
import { hash } from "node:crypto";

const HASHED = /^sha256:([0-9a-fA-F]{64})$/;

/** Lower-case hex SHA-256 of a key as sent by a client. */
export function keyDigest(key: string): string {
  return hash("sha256", key, "hex");
}

/** The digest a key spec stands for: `sha256:<hex>` as given, anything else hashed. */
export function specDigest(spec: string): string {
  const m = HASHED.exec(spec);
  return m ? m[1]!.toLowerCase() : keyDigest(spec);
}

/** Whether a spec looks like a hash but is not a well-formed one (a typo in the config). */
export function malformedHashSpec(spec: string): boolean {
  return spec.startsWith("sha256:") && !HASHED.test(spec);
}
