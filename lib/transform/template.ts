/**
 * `${...}` templates that take values from the request: parsed and compiled
 * once at load into a function of the request context; a template without
 * variables compiles to its constant text.
 *
 * Variables: `request_id`, `route.name`, `consumer.id`, `consumer.plan`,
 * `identity.subject`, `identity.provider`, `claim.NAME` (dotted for nested
 * claims), `header.NAME`, `query.NAME`, `param.NAME`, `request.method`,
 * `request.path`, `request.host`, `request.client_ip`. `$${` writes `${`.
 */
import type { RequestContext } from "../core/context.ts";

export type Template = (ctx: RequestContext) => string;
type Getter = (ctx: RequestContext) => string | null | undefined;

const FIXED: Record<string, Getter> = {
  "request_id": (ctx) => ctx.requestId,
  "route.name": (ctx) => ctx.route?.name,
  "consumer.id": (ctx) => ctx.consumer?.id,
  "consumer.plan": (ctx) => ctx.consumer?.plan,
  "identity.subject": (ctx) => ctx.identity?.subject,
  "identity.provider": (ctx) => ctx.identity?.provider,
  "request.method": (ctx) => ctx.method,
  "request.path": (ctx) => ctx.path,
  "request.host": (ctx) => ctx.host,
  "request.client_ip": (ctx) => ctx.clientIp,
};

const NAMESPACED: Record<string, (name: string) => Getter> = {
  claim: (name) => {
    const path = name.split(".");
    return (ctx) => claimText(ctx.identity?.claims, path);
  },
  header: (name) => {
    const lower = name.toLowerCase();
    return (ctx) => ctx.headers.get(lower);
  },
  query: (name) => (ctx) => ctx.searchParams.get(name),
  param: (name) => (ctx) => ctx.params?.[name],
};

const VARIABLE = /\$\$\{|\$\{([^}]*)\}/g;

export type TemplatePart = string | { variable: string; get: Getter };

/** Splits a template into text and variables; throws an Error naming what is wrong. */
export function parseTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let literal = "";
  let last = 0;
  const raw = (end?: number) => {
    const piece = text.slice(last, end);
    if (piece.includes("${")) throw new Error("unclosed ${ (write $${ for a literal ${)");
    literal += piece;
  };
  for (const m of text.matchAll(VARIABLE)) {
    raw(m.index);
    last = m.index + m[0].length;
    if (m[0] === "$${") {
      literal += "${";
      continue;
    }
    if (literal) parts.push(literal);
    literal = "";
    parts.push({ variable: m[1]!, get: getterFor(m[1]!.trim()) });
  }
  raw();
  if (literal) parts.push(literal);
  return parts;
}

function getterFor(variable: string): Getter {
  const fixed = FIXED[variable];
  if (fixed) return fixed;
  const dot = variable.indexOf(".");
  const ns = dot > 0 ? NAMESPACED[variable.slice(0, dot)] : undefined;
  const name = variable.slice(dot + 1);
  if (ns && name) return ns(name);
  throw new Error(
    `unknown template variable \${${variable}} (expected request_id, route.name, consumer.id, ` +
      "consumer.plan, identity.subject, identity.provider, request.method, request.path, " +
      "request.host, request.client_ip, or claim.NAME, header.NAME, query.NAME, param.NAME)",
  );
}

/**
 * Compiles a template; `encode` is applied to every substituted value (for
 * example `encodeURIComponent` in a path). A missing value becomes "".
 */
export function compileTemplate(text: string, encode?: (v: string) => string): Template {
  const parts = parseTemplate(text);
  if (parts.length === 0) return () => "";
  if (parts.length === 1 && typeof parts[0] === "string") {
    const constant = parts[0];
    return () => constant;
  }
  const value = (p: TemplatePart, ctx: RequestContext): string => {
    if (typeof p === "string") return p;
    const v = p.get(ctx) ?? "";
    return encode && v ? encode(v) : v;
  };
  if (parts.length === 1) {
    const only = parts[0]!;
    return (ctx) => value(only, ctx);
  }
  return (ctx) => {
    let out = "";
    for (let i = 0; i < parts.length; i++) out += value(parts[i]!, ctx);
    return out;
  };
}

/** Variables a template uses (`param.id`, ...), for load-time checks. */
export function templateVariables(text: string): string[] {
  return parseTemplate(text).flatMap((p) => (typeof p === "string" ? [] : [p.variable.trim()]));
}

function claimText(
  claims: Readonly<Record<string, unknown>> | undefined,
  path: readonly string[],
): string | null {
  let v: unknown = claims;
  for (const key of path) {
    if (v === null || typeof v !== "object") return null;
    v = (v as Record<string, unknown>)[key];
  }
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x !== "object")) return v.join(" ");
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}
