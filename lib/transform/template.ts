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
import { safeHeaderValue, utf8Bytes } from "../proxy/header_edits.ts";

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
  query: (name) => (ctx) => ctx.queryParams.get(name),
  param: (name) => (ctx) => ctx.params?.[name],
};

/** Values that arrive as header bytes (one char per byte) rather than as text. */
const WIRE = new Set(["request.host", "request.path"]);

const VARIABLE = /\$\$\{|\$\{([^}]*)\}/g;

export type TemplatePart = string | { variable: string; get: Getter; wire: boolean };

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
    const variable = m[1]!.trim();
    parts.push({ variable: m[1]!, get: getterFor(variable), wire: isWire(variable) });
  }
  raw();
  if (literal) parts.push(literal);
  return parts;
}

function isWire(variable: string): boolean {
  return WIRE.has(variable) || variable.startsWith("header.");
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
 * example `encodeURIComponent` in a path), `encodeWire` instead to values that
 * arrived as header bytes (`header.*`, `request.host`, `request.path`). A
 * missing value becomes "".
 */
export function compileTemplate(
  text: string,
  encode?: (v: string) => string,
  encodeWire: ((v: string) => string) | undefined = encode,
): Template {
  return compileParts(parseTemplate(text), (p) => p.wire ? encodeWire : encode);
}

/**
 * Compiles a template into a header value, safe for a header line and in one
 * encoding: text (the template's own, claims, ids, decoded query and path
 * parameters) as UTF-8 bytes, values that arrived as header bytes
 * (`header.*`, `request.host`, `request.path`) as they arrived.
 */
export function compileHeaderTemplate(text: string): Template {
  const parts = parseTemplate(text).map((p) => typeof p === "string" ? utf8Bytes(p) : p);
  const bytes = compileParts(parts, (p) => p.wire ? undefined : utf8Bytes);
  const constant = parts.every((p) => typeof p === "string");
  if (constant) {
    const value = safeHeaderValue(parts.join(""));
    return () => value;
  }
  return (ctx) => safeHeaderValue(bytes(ctx));
}

type Variable = Exclude<TemplatePart, string>;

/** The template of `parts`, each variable's value passed through `encodeOf(variable)` if set. */
function compileParts(
  parts: readonly TemplatePart[],
  encodeOf: (p: Variable) => ((v: string) => string) | undefined,
): Template {
  if (parts.length === 0) return () => "";
  if (parts.length === 1 && typeof parts[0] === "string") {
    const constant = parts[0];
    return () => constant;
  }
  const encoders = parts.map((p) => typeof p === "string" ? undefined : encodeOf(p));
  const value = (i: number, ctx: RequestContext): string => {
    const p = parts[i]!;
    if (typeof p === "string") return p;
    const v = p.get(ctx) ?? "";
    const encode = encoders[i];
    return encode && v ? encode(v) : v;
  };
  if (parts.length === 1) return (ctx) => value(0, ctx);
  return (ctx) => {
    let out = "";
    for (let i = 0; i < parts.length; i++) out += value(i, ctx);
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
