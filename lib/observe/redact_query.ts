/**
 * Query parameters that carry credentials are masked before a URL is logged.
 * The names are matched case-insensitively after percent-decoding, so
 * `?API_KEY=` and `?api%5Fkey=` are caught as well as `?api_key=`.
 */

/** Names masked by default: common spellings of tokens, keys, secrets and signatures. */
export const DEFAULT_REDACTED_QUERY: readonly string[] = [
  "access_token",
  "api_key",
  "apikey",
  "auth",
  "authorization",
  "client_secret",
  "code_verifier",
  "id_token",
  "key",
  "passwd",
  "password",
  "refresh_token",
  "secret",
  "sig",
  "signature",
  "token",
  "x-amz-credential",
  "x-amz-security-token",
  "x-amz-signature",
];

export const REDACTED = "REDACTED";

export type QueryRedactor = (query: string) => string;

/** Compiles a redactor for these names; it returns the query itself when nothing matches. */
export function compileQueryRedactor(names: Iterable<string>): QueryRedactor {
  const masked = new Set<string>();
  for (const n of names) masked.add(n.toLowerCase());
  return (query) => {
    if (query.length < 2) return query;
    const parts = query.slice(1).split("&");
    let changed = false;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const eq = p.indexOf("=");
      const name = eq < 0 ? p : p.slice(0, eq);
      if (eq >= 0 && masked.has(decodeName(name))) {
        parts[i] = `${name}=${REDACTED}`;
        changed = true;
      }
    }
    return changed ? `?${parts.join("&")}` : query;
  };
}

function decodeName(name: string): string {
  if (!name.includes("%") && !name.includes("+")) return name.toLowerCase();
  try {
    return decodeURIComponent(name.replace(/\+/g, " ")).toLowerCase();
  } catch {
    return name.toLowerCase();
  }
}

/** An absolute URL with its query's credentials masked (`url.full` of a trace span). */
export function redactUrl(url: string, redact: QueryRedactor): string {
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q) + redact(url.slice(q));
}
