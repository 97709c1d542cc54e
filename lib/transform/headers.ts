/**
 * Header rules for requests (recorded as edits of what goes upstream) and
 * responses (applied to the response headers), compiled once. Operations run
 * in a fixed order: remove, rename, set, add. A `set` whose template comes
 * out empty (once made safe for a header line) removes the header, so a client
 * can never supply a value the gateway meant to provide (an anonymous caller's
 * `X-Consumer-Id`, say).
 */
import type { RequestContext } from "../core/context.ts";
import { type FieldEditor, fieldLines } from "../core/response_fields.ts";
import { compileHeaderTemplate, type Template } from "./template.ts";

export interface HeaderRules {
  set?: Readonly<Record<string, string>> | undefined;
  add?: Readonly<Record<string, string>> | undefined;
  remove?: readonly string[] | undefined;
  rename?: Readonly<Record<string, string>> | undefined;
}

interface Compiled {
  remove: string[];
  rename: [string, string][];
  set: [string, Template][];
  add: [string, Template][];
}

function compile(rules: HeaderRules): Compiled | null {
  const lower = (s: string) => s.toLowerCase();
  const templates = (r: Readonly<Record<string, string>> | undefined): [string, Template][] =>
    Object.entries(r ?? {}).map(([k, v]) => [lower(k), compileHeaderTemplate(v)]);
  const c: Compiled = {
    remove: (rules.remove ?? []).map(lower),
    rename: Object.entries(rules.rename ?? {}).map(([from, to]) => [lower(from), lower(to)]),
    set: templates(rules.set),
    add: templates(rules.add),
  };
  const empty = !c.remove.length && !c.rename.length && !c.set.length && !c.add.length;
  return empty ? null : c;
}

/** Edits of the request headers sent upstream; null when the rules do nothing. */
export function compileRequestHeaders(rules: HeaderRules): ((ctx: RequestContext) => void) | null {
  const c = compile(rules);
  if (!c) return null;
  return (ctx) => {
    const edits = ctx.upstreamHeaders;
    const original = ctx.headers;
    for (const name of c.remove) edits.remove(name);
    for (const [from, to] of c.rename) edits.rename(from, to, original);
    for (const [name, t] of c.set) {
      const v = t(ctx);
      if (v === "") edits.remove(name);
      else edits.setPrepared(name, v);
    }
    for (const [name, t] of c.add) {
      const v = t(ctx);
      if (v !== "") edits.appendPrepared(name, v);
    }
  };
}

export type ResponseHeaderEdit = (ctx: RequestContext, headers: FieldEditor) => void;

/** Edits of the response headers; null when the rules do nothing. */
export function compileResponseHeaders(rules: HeaderRules): ResponseHeaderEdit | null {
  const c = compile(rules);
  if (!c) return null;
  return (ctx, headers) => {
    for (const name of c.remove) headers.delete(name);
    for (const [from, to] of c.rename) {
      const lines = fieldLines(headers, from);
      if (lines.length === 0) continue;
      headers.delete(from);
      headers.delete(to);
      for (const v of lines) headers.append(to, v);
    }
    for (const [name, t] of c.set) {
      const v = t(ctx);
      if (v === "") headers.delete(name);
      else headers.set(name, v);
    }
    for (const [name, t] of c.add) {
      const v = t(ctx);
      if (v !== "") headers.append(name, v);
    }
  };
}
