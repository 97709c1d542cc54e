/**
 * The effective configuration as the admin API shows it: every secret masked.
 * Masked are the values of secret-named keys (`client_secret`, `api_keys`,
 * `secret`, `token`, `password`), of credential-carrying header names, the
 * password of any URL, and every value that came from `${VAR}` interpolation
 * (shown as its template with defaults dropped, so the variable's name stays
 * visible but neither its value nor its default does).
 */
import type { KeyPath } from "../config/issues.ts";
import type { YamlSource } from "../config/yaml_source.ts";

export const MASK = "[redacted]";

const SECRET_KEYS = new Set(["client_secret", "api_keys", "secret", "token", "password"]);

/** Whether values under `key` are secrets (masked in /config, never printed in errors). */
export function isSecretKey(key: string | number | undefined): boolean {
  return typeof key === "string" && SECRET_KEYS.has(key.toLowerCase());
}
const CREDENTIAL_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "x-api-key",
]);
const VARIABLE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(?:[^}\\]|\\.)*)?\}/g;

/** An interpolated value: where it is, and its template as the file wrote it. */
export interface Interpolated {
  path: KeyPath;
  template: string;
  /** The value it resolved to. */
  value: unknown;
}

/** Finds the scalars of a loaded config whose text used `${VAR}` (before interpolation). */
export function findInterpolated(source: YamlSource): Interpolated[] {
  const out: Interpolated[] = [];
  source.forEachScalar((node, path) => {
    // `source` keeps the scalar's text as written; `value` is what interpolation made of it.
    const template = typeof node.source === "string" ? templateOf(node.source) : null;
    if (template !== null) out.push({ path, template, value: node.value });
  });
  return out;
}

/** `${A:-x} and ${B}` -> `${A} and ${B}`; null when the text has no variable. */
function templateOf(text: string): string | null {
  let found = false;
  const template = text.replace(VARIABLE, (whole, name?: string) => {
    if (name === undefined) return whole;
    found = true;
    return `\${${name}}`;
  });
  return found ? template : null;
}

/** A deep copy of `config` with every secret masked. */
export function redactConfig(config: unknown, interpolated: readonly Interpolated[]): unknown {
  const copy = mask(config, null);
  const unplaced = new Map<unknown, string>();
  for (const { path, template, value } of interpolated) {
    if (!setAt(copy, path, template) && value !== "") unplaced.set(value, template);
  }
  // A value whose key path the schema reshaped is still found by its value.
  return unplaced.size ? replaceValues(copy, unplaced) : copy;
}

function replaceValues(v: unknown, values: ReadonlyMap<unknown, string>): unknown {
  if (Array.isArray(v)) return v.map((item) => replaceValues(item, values));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v)) out[k] = replaceValues(child, values);
    return out;
  }
  return values.get(v) ?? v;
}

function mask(v: unknown, key: string | null): unknown {
  if (key !== null) {
    if (isSecretKey(key)) {
      return Array.isArray(v) ? v.map(() => MASK) : v === undefined || v === null ? v : MASK;
    }
    if (CREDENTIAL_HEADERS.has(key.toLowerCase()) && typeof v === "string") return MASK;
  }
  if (Array.isArray(v)) return v.map((item) => mask(item, null));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v)) out[k] = mask(child, k);
    return out;
  }
  if (typeof v === "string") return maskUrlPassword(v);
  return v;
}

function maskUrlPassword(s: string): string {
  if (!s.includes("://") || !s.includes("@")) return s;
  try {
    const u = new URL(s);
    if (u.password === "") return s;
    // Set as a plain word: URL would percent-encode the brackets of MASK.
    u.password = "redacted";
    return u.toString().replace(":redacted@", `:${MASK}@`);
  } catch {
    return s;
  }
}

/** Replaces the value at `path`; false when the path does not exist in `root`. */
function setAt(root: unknown, path: KeyPath, value: unknown): boolean {
  let node = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (node === null || typeof node !== "object") return false;
    node = (node as Record<string | number, unknown>)[path[i]!];
  }
  const last = path[path.length - 1];
  if (last === undefined || node === null || typeof node !== "object") return false;
  if (!Object.hasOwn(node, last)) return false;
  (node as Record<string | number, unknown>)[last] = value;
  return true;
}
