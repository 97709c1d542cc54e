/** Path rewriting, compiled once per route: strip the matched prefix, or rewrite by regex. */
import type { RewriteConfig } from "./schema.ts";

/** (path, length of the matched prefix) -> path to send upstream. */
export type PathRewrite = (path: string, matchedLength: number) => string;

export function compileRewrite(
  stripPrefix: boolean,
  rewrite: RewriteConfig | undefined,
): PathRewrite | null {
  const strip: PathRewrite | null = stripPrefix
    ? (path, len) => {
      const rest = path.slice(len);
      return rest === "" ? "/" : rest.charCodeAt(0) === 47 ? rest : "/" + rest;
    }
    : null;
  if (!rewrite) return strip;
  let rw: PathRewrite;
  if ("regex" in rewrite) {
    const re = new RegExp(rewrite.regex);
    const replacement = rewrite.replacement;
    rw = (path) => {
      const out = path.replace(re, replacement);
      return out.charCodeAt(0) === 47 ? out : "/" + out;
    };
  } else {
    const prefix = rewrite.prefix.endsWith("/") && rewrite.prefix.length > 1
      ? rewrite.prefix.slice(0, -1)
      : rewrite.prefix;
    rw = (path, len) => {
      const rest = path.slice(len);
      if (prefix === "/") return rest === "" ? "/" : rest.charCodeAt(0) === 47 ? rest : "/" + rest;
      return rest === "" || rest.charCodeAt(0) === 47 ? prefix + rest : `${prefix}/${rest}`;
    };
  }
  return strip ? (path, len) => rw(strip(path, len), 0) : rw;
}
