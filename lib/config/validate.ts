/** Turns schema validation failures into positioned, human-readable issues. */
import { z } from "zod";
import { configSchema } from "./schema.ts";
import { type ConfigIssue, didYouMean, type KeyPath } from "./issues.ts";
import type { YamlSource } from "./yaml_source.ts";
import { findInterpolated, isSecretKey } from "../observe/redact_config.ts";

type ZodIssue = z.core.$ZodIssue;
type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
};

let jsonSchemaCache: JsonSchema | null = null;
/** JSON Schema of the contract, for editors and for "did you mean" on unknown keys. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}

function expand(ns: JsonSchema[]): JsonSchema[] {
  return ns.flatMap((n) => {
    const subs = [...(n.anyOf ?? []), ...(n.oneOf ?? []), ...(n.allOf ?? [])];
    return subs.length ? [n, ...expand(subs)] : [n];
  });
}

function schemaNodesAt(path: KeyPath): JsonSchema[] {
  jsonSchemaCache ??= configJsonSchema() as JsonSchema;
  let nodes: JsonSchema[] = [jsonSchemaCache];
  for (const seg of path) {
    nodes = expand(nodes).flatMap((n) => {
      if (typeof seg === "number") return n.items ? [n.items] : [];
      const p = n.properties?.[seg];
      if (p) return [p];
      if (typeof n.additionalProperties === "object") return [n.additionalProperties];
      return [];
    });
  }
  return nodes;
}

function knownKeysAt(path: KeyPath): string[] {
  return [...new Set(expand(schemaNodesAt(path)).flatMap((n) => Object.keys(n.properties ?? {})))];
}

/** The keys of each form a setting written in several forms takes (`regex + replacement`). */
function formsAt(path: KeyPath): string[] {
  return expand(schemaNodesAt(path)).flatMap((n) => [...(n.anyOf ?? []), ...(n.oneOf ?? [])])
    .map((form) => Object.keys(form.properties ?? {}))
    .filter((keys) => keys.length > 0)
    .map((keys) => keys.join(" + "));
}

/**
 * A key unknown here: a suggestion, or, when another form of the setting takes
 * it, which forms there are (suggesting the key itself would not help).
 */
function unknownKeyMessage(key: string, path: KeyPath): string {
  const known = knownKeysAt(path);
  if (!known.includes(key)) return `unknown key "${key}"${didYouMean(key, known)}`;
  const forms = formsAt(path);
  return forms.length > 1
    ? `key "${key}" mixes forms: use either ${forms.join(" or ")}, not both`
    : `unknown key "${key}" here`;
}

/**
 * A rejected value that must not be printed: one under a secret-named key, or
 * one that came from the environment (an error message ends up in logs and in
 * POST /reload answers). Only its kind is told, and the variable it came from.
 */
class Concealed {
  constructor(readonly value: unknown, readonly template: string | null) {}
}

function describe(v: unknown): string {
  if (v instanceof Concealed) {
    const kind = Array.isArray(v.value) ? "a list" : `a ${typeof v.value}`;
    return v.template === null ? kind : `${kind} from ${v.template}`;
  }
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string "${v.length > 40 ? v.slice(0, 40) + "…" : v}"`;
  return `${typeof v} ${String(v)}`;
}

function valueAt(root: unknown, path: KeyPath): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** Picks the union branch that got furthest: its issues are the useful ones. */
function bestBranch(branches: ZodIssue[][]): ZodIssue[] {
  const score = (issues: ZodIssue[]) => {
    const wholeTypeMismatch = issues.length === 1 && issues[0]!.code === "invalid_type" &&
      issues[0]!.path.length === 0;
    const literalMiss = issues.some((i) => i.code === "invalid_value" && i.path.length === 1);
    return (wholeTypeMismatch ? 1000 : 0) + (literalMiss ? 100 : 0) + issues.length;
  };
  return [...branches].sort((a, b) => score(a) - score(b))[0] ?? [];
}

function expected(i: ZodIssue, input: unknown): string {
  switch (i.code) {
    case "invalid_type":
      return input === undefined
        ? `missing required key (expected ${i.expected})`
        : `expected ${i.expected}, got ${describe(input)}`;
    case "invalid_value": {
      const options = i.values.map((v) => JSON.stringify(v));
      return `expected ${options.length > 1 ? "one of " : ""}${options.join(", ")}, got ${
        describe(input)
      }${typeof input === "string" ? didYouMean(input, i.values.map(String)) : ""}`;
    }
    case "too_small":
      if (i.origin === "array") return `expected at least ${i.minimum} item(s)`;
      if (i.origin === "string") return `expected at least ${i.minimum} character(s)`;
      return `expected a value ${i.inclusive ? ">=" : ">"} ${i.minimum}, got ${describe(input)}`;
    case "too_big":
      // A bound with its reason given in the schema (timerMs) says it.
      if (i.message.startsWith("expected")) return `${i.message}, got ${describe(input)}`;
      if (i.origin === "array") return `expected at most ${i.maximum} item(s)`;
      if (i.origin === "string") return `expected at most ${i.maximum} character(s)`;
      return `expected a value ${i.inclusive ? "<=" : "<"} ${i.maximum}, got ${describe(input)}`;
    case "invalid_format":
      return i.message.startsWith("expected")
        ? `${i.message}, got ${describe(input)}`
        : `expected ${i.format} format, got ${describe(input)}`;
    case "not_multiple_of":
      return `expected a multiple of ${i.divisor}`;
    default:
      return i.message;
  }
}

/** Every problem the schema finds in `data`, positioned in the YAML source. */
export async function schemaIssues(
  data: unknown,
  src: YamlSource,
): Promise<{ config: z.output<typeof configSchema> | null; issues: ConfigIssue[] }> {
  // Asynchronous: checking a regular expression loads the RE2 engine on first use.
  const result = await configSchema.safeParseAsync(data);
  if (result.success) return { config: result.data, issues: [] };
  const out: ConfigIssue[] = [];
  const templates = new Map(findInterpolated(src).map((x) => [x.path.join("\0"), x.template]));
  // What an error may say of the value at `path`.
  const shownAt = (path: KeyPath): unknown => {
    const v = valueAt(data, path);
    const template = templates.get(path.join("\0")) ?? null;
    const secret = path.some(isSecretKey);
    return v !== undefined && (template !== null || secret) ? new Concealed(v, template) : v;
  };
  const visit = (i: ZodIssue, base: KeyPath): void => {
    const path = [...base, ...i.path] as (string | number)[];
    if (i.code === "unrecognized_keys") {
      for (const key of i.keys) {
        out.push(src.issue([...path, key], unknownKeyMessage(key, path), { key: true }));
      }
      return;
    }
    if (i.code === "invalid_key") {
      const key = path[path.length - 1]!;
      const why = i.issues[0] ? expected(i.issues[0], String(key)) : i.message;
      out.push(src.issue(path, `key ${JSON.stringify(key)}: ${why}`, { key: true }));
      return;
    }
    if (i.code === "invalid_union") {
      const disc = (i as { discriminator?: string }).discriminator;
      const options = (i as { options?: unknown[] }).options;
      if (disc && options && i.errors.length === 0) {
        const input = shownAt(path);
        out.push(src.issue(
          path,
          `expected ${disc} to be one of ${options.map((o) => `"${o}"`).join(", ")}, got ${
            describe(input)
          }${typeof input === "string" ? didYouMean(input, options.map(String)) : ""}`,
        ));
        return;
      }
      for (const sub of bestBranch(i.errors)) visit(sub, path);
      return;
    }
    out.push(src.issue(path, expected(i, shownAt(path))));
  };
  for (const i of result.error.issues) visit(i, []);
  return { config: null, issues: out };
}
