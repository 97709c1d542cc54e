/** Path rewriting, compiled once per route: strip the matched prefix, or rewrite by regex. */
import type { RewriteConfig } from "./schema.ts";
import { compileLinearPattern } from "../core/linear_regex.ts";

/** (path, length of the matched prefix) -> path to send upstream. */
export type PathRewrite = (path: string, matchedLength: number) => string;

/**
 * `mergeSlashes` is `security.merge_slashes`: when on, a regex replacement
 * that joins two slashes (`/v2/$1` with `$1` = `/users`) is merged as the
 * request path was. A leading `//` is always cut to `/`: it is not a path
 * (RFC 3986 §3.3) and URL parsers read it as an authority (`//evil/x`).
 */
export function compileRewrite(
  stripPrefix: boolean,
  rewrite: RewriteConfig | undefined,
  mergeSlashes = true,
): PathRewrite | null {
  const strip: PathRewrite | null = stripPrefix
    ? (path, len) => {
      const rest = path.slice(len);
      return rest === "" ? "/" : rest.charCodeAt(0) === 47 ? oneLeadingSlash(rest) : "/" + rest;
    }
    : null;
  if (!rewrite) return strip;
  let rw: PathRewrite;
  if ("regex" in rewrite) {
    const re = compileLinearPattern(rewrite.regex);
    const replacement = rewrite.replacement;
    const merge = mergeSlashes ? mergeSlashRuns : oneLeadingSlash;
    rw = (path) => {
      const out = re.replaceFirst(path, replacement);
      return out.charCodeAt(0) === 47 ? merge(out) : merge("/" + out);
    };
  } else {
    const prefix = rewrite.prefix.endsWith("/") && rewrite.prefix.length > 1
      ? rewrite.prefix.slice(0, -1)
      : rewrite.prefix;
    rw = (path, len) => {
      const rest = path.slice(len);
      if (prefix === "/") {
        return rest === "" ? "/" : rest.charCodeAt(0) === 47 ? oneLeadingSlash(rest) : "/" + rest;
      }
      return rest === "" || rest.charCodeAt(0) === 47 ? prefix + rest : `${prefix}/${rest}`;
    };
  }
  return strip ? (path, len) => rw(strip(path, len), 0) : rw;
}

/** `path` (starting with `/`) without a second leading slash: `//x` is `/x`. */
function oneLeadingSlash(path: string): string {
  if (path.charCodeAt(1) !== 47) return path;
  let i = 2;
  while (path.charCodeAt(i) === 47) i++;
  return path.slice(i - 1);
}

/** `path` with every run of slashes one slash, as normalisation merges them. */
function mergeSlashRuns(path: string): string {
  return path.includes("//") ? path.replace(/\/{2,}/g, "/") : path;
}
