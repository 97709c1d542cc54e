/**
 * Loading a configuration: read -> parse YAML -> interpolate ${ENV} -> validate
 * against the schema -> cross-reference checks (on the parts that passed the
 * schema). Every problem found is reported at once, each with file, line, column
 * and key path; only YAML errors (duplicate keys included) stop before the rest.
 */
import { YamlSource } from "./yaml_source.ts";
import { type Env, interpolate } from "./interpolate.ts";
import { schemaIssues } from "./validate.ts";
import { semanticIssues } from "./semantics.ts";
import { partialConfig } from "./partial.ts";
import { ConfigError, type ConfigIssue } from "./issues.ts";
import type { GatewayConfig } from "./schema.ts";

export interface LoadedConfig {
  config: GatewayConfig;
  /** File the config came from; relative paths inside it resolve against its folder. */
  file: string;
  /** SHA-256 of the source text, for /metrics and /config. */
  hash: string;
  /** The source text, as read. */
  text: string;
  source: YamlSource;
}

export type { Env };
export const processEnv: Env = (name) => Deno.env.get(name);

/** Parses and validates config text. Throws `ConfigError` with every issue found. */
export async function parseConfig(
  text: string,
  file: string,
  env: Env = processEnv,
): Promise<LoadedConfig> {
  const source = new YamlSource(file, text);
  const syntax = source.syntaxIssues();
  if (syntax.length) throw new ConfigError(syntax);
  const aliases = source.aliasIssues();
  if (aliases.length) throw new ConfigError(aliases);
  // An empty file is more likely a truncated or wrong one than a wish for no
  // routes on the default listener; a reload would close the listeners serving.
  if (source.doc.contents === null) {
    throw new ConfigError([
      source.issue(
        [],
        "the file has no settings: expected a mapping of sections (listeners, routes, ...); write {} for none",
      ),
    ]);
  }
  const issues: ConfigIssue[] = interpolate(source, env);
  // aliasIssues() bounds what aliases expand to; the parser's own bound counts
  // uses of one anchor, and refused a config sharing a value with 100 routes.
  const data = source.doc.toJS({ maxAliasCount: -1 }) ?? {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError([source.issue([], "expected a mapping at the top of the file")]);
  }
  const { config, issues: schemaProblems } = await schemaIssues(data, source);
  // A missing variable already explains why the value at its key is wrong.
  const interpolated = new Set(issues.map((i) => `${i.line}:${i.path.join(".")}`));
  issues.push(...schemaProblems.filter((i) => !interpolated.has(`${i.line}:${i.path.join(".")}`)));
  // Cross-reference checks judge the parts without an issue (a missing variable
  // counts), so that fixing the schema errors does not reveal a second batch.
  const parts = config && issues.length === 0
    ? config
    : await partialConfig(data, issues.map((i) => i.path));
  for (const s of semanticIssues(parts)) {
    issues.push(source.issue(s.path, s.message, s.key ? { key: true } : {}));
  }
  if (issues.length || !config) throw new ConfigError(sortIssues(issues));
  return { config, file, hash: await sha256Hex(text), text, source };
}

/** Reads and validates a config file. Throws `ConfigError` (an unreadable file is one too). */
export async function loadConfigFile(file: string, env: Env = processEnv): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError([{
      file,
      line: 0,
      col: 0,
      path: [],
      message: `cannot read the config file: ${(e as Error).message}`,
    }]);
  }
  return parseConfig(text, file, env);
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
