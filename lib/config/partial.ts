/**
 * A configuration as far as it passed the schema, so that the cross-reference
 * checks can run beside the schema errors instead of after they are fixed. A
 * section, list item or named entry with an error is `INVALID` in its place:
 * list indexes stay those of the file, and a named entry that failed still
 * defines its name (a route naming it must not also get "unknown upstream").
 */
import { z } from "zod";
import { configSchema, type GatewayConfig } from "./schema.ts";
import type { KeyPath } from "./issues.ts";

export const INVALID: unique symbol = Symbol("invalid");
export type OrInvalid<T> = T | typeof INVALID;

type Part<T> = T extends readonly (infer Item)[] ? OrInvalid<Item>[]
  : string extends keyof T ? { [name: string]: OrInvalid<T[keyof T]> }
  : T;

export type PartialConfig = { [K in keyof GatewayConfig]: OrInvalid<Part<GatewayConfig[K]>> };

/**
 * Parses each part of `data` that has no issue under it (`failed` holds the key
 * paths of the issues), as the whole schema would: no refinement of the schema
 * spans two sections, two list items or two named entries.
 */
export async function partialConfig(
  data: Record<string, unknown>,
  failed: readonly KeyPath[],
): Promise<PartialConfig> {
  const sections: Record<string, z.ZodType> = configSchema.shape;
  // A misspelt section name leaves the section meant absent: its default says nothing then.
  const misspelt = failed.some(([top]) => typeof top === "string" && !Object.hasOwn(sections, top));
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(sections)) {
    const value = data[name];
    const inside = failed.filter((p) => p.length === 0 || p[0] === name);
    let part: unknown;
    if (value === undefined && misspelt) part = INVALID;
    else if (inside.length === 0) part = await parsed(schema, value);
    else if (inside.some((p) => p.length <= 1)) part = INVALID;
    else part = await entriesParsed(unwrap(schema), value, inside.map((p) => p[1]!));
    if (part !== undefined) out[name] = part;
  }
  return out as PartialConfig;
}

/** A list or named map whose issues all lie inside some of its entries. */
async function entriesParsed(
  schema: z.ZodType,
  value: unknown,
  failedEntries: (string | number)[],
): Promise<unknown> {
  const bad = new Set(failedEntries.map(String));
  if (schema instanceof z.ZodArray && Array.isArray(value)) {
    const element = schema.element as z.ZodType;
    return await Promise.all(
      value.map((item, i) => bad.has(String(i)) ? INVALID : parsed(element, item)),
    );
  }
  if (schema instanceof z.ZodRecord && value !== null && typeof value === "object") {
    const entry = schema.valueType as z.ZodType;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = bad.has(key) ? INVALID : await parsed(entry, item);
    }
    return out;
  }
  return INVALID;
}

async function parsed(schema: z.ZodType, value: unknown): Promise<unknown> {
  const result = await schema.safeParseAsync(value);
  return result.success ? result.data : INVALID;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let inner = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) {
    inner = inner.unwrap() as z.ZodType;
  }
  return inner;
}

/** The items of a list that passed the schema, with their index in the file. */
export function validItems<T>(list: OrInvalid<OrInvalid<T>[]>): { item: T; i: number }[] {
  if (list === INVALID) return [];
  return list.flatMap((item, i) => item === INVALID ? [] : [{ item, i }]);
}

/** The named entries that passed the schema. */
export function validEntries<T>(
  map: OrInvalid<{ [name: string]: OrInvalid<T> }>,
): [string, T][] {
  if (map === INVALID) return [];
  return Object.entries(map).flatMap(([name, v]) =>
    v === INVALID ? [] : [[name, v] as [string, T]]
  );
}

/** Whether every item of a list passed the schema (a check that needs them all can run). */
export function allValid<T>(list: OrInvalid<OrInvalid<T>[]>): list is T[] {
  return list !== INVALID && !list.includes(INVALID);
}

/**
 * Whether `name` may be referred to. An entry that failed the schema still
 * defines its name; a whole section that failed may define any.
 */
export function defines(map: OrInvalid<{ [name: string]: unknown }>, name: string): boolean {
  // Own names only: `in` would accept "constructor" or "toString".
  return map === INVALID || Object.hasOwn(map, name);
}

/** The names a section defines, for "did you mean" hints. */
export function namesIn(map: OrInvalid<{ [name: string]: unknown }>): string[] {
  return map === INVALID ? [] : Object.keys(map);
}
