/**
 * `${VAR}` and `${VAR:-default}` in YAML scalars, resolved against the
 * environment before validation. An unquoted scalar that becomes a number or a
 * boolean is typed as such (`port: ${PORT:-8080}` is a number); a quoted one
 * stays a string. `$${` writes a literal `${`. `${request_id}` is left alone:
 * it is a request variable of header templates, not an environment variable.
 */
import { Scalar } from "yaml";
import type { ConfigIssue } from "./issues.ts";
import type { YamlSource } from "./yaml_source.ts";

const VAR_RE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:[^}\\]|\\.)*))?\}/g;

export type Env = (name: string) => string | undefined;

/** `${...}` names that belong to request-time templates (lib/transform/template.ts). */
const REQUEST_VARIABLES = new Set(["request_id"]);

export function substitute(
  text: string,
  env: Env,
): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = text.replace(VAR_RE, (whole, name?: string, fallback?: string) => {
    if (whole === "$${") return "${";
    if (REQUEST_VARIABLES.has(name!)) return whole;
    const v = env(name!);
    if (v !== undefined && v !== "") return v;
    if (fallback !== undefined) return fallback.replace(/\\(.)/g, "$1");
    if (v === "") return "";
    missing.push(name!);
    return "";
  });
  return { value, missing };
}

/**
 * Rewrites every scalar of the document in place; returns the variables that
 * were missing, and those written in keys.
 */
export function interpolate(src: YamlSource, env: Env): ConfigIssue[] {
  const issues: ConfigIssue[] = keyVariables(src);
  src.forEachScalar((node, path) => {
    if (typeof node.value !== "string" || !node.value.includes("${")) return;
    const { value, missing } = substitute(node.value, env);
    for (const name of missing) {
      issues.push(src.issue(
        path,
        `environment variable ${name} is not set (set it, or write \${${name}:-default})`,
      ));
    }
    node.value = node.type === Scalar.PLAIN ? retype(value) : value;
  });
  return issues;
}

/**
 * Keys are taken as written: a variable there would be kept as its `${NAME}`
 * text, and a name that then matches nothing says nothing of the variable.
 */
function keyVariables(src: YamlSource): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  src.forEachKey((node, path) => {
    if (typeof node.value !== "string") return;
    for (const name of envVariables(node.value)) {
      issues.push(src.issue(
        path,
        `\${${name}} in a key is not substituted: expected a key written out (variables go in values)`,
        { key: true },
      ));
    }
  });
  return issues;
}

/** The environment variables `text` names (not `$${` escapes nor request variables). */
function envVariables(text: string): string[] {
  return [...text.matchAll(VAR_RE)].flatMap(([whole, name]) =>
    whole === "$${" || REQUEST_VARIABLES.has(name!) ? [] : [name!]
  );
}

function retype(value: string): string | number | boolean {
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value === "true") return true;
  if (value === "false") return false;
  return value;
}
