/**
 * Request filtering (a small WAF): the configured rules and the built-in set,
 * compiled once into a policy. A rule matches when every condition it lists
 * matches; `block` refuses with 403 `request_blocked`, `log` records the match
 * and lets the request through. The values are decoded once per request and
 * only when some rule looks at them.
 */
import type { RequestContext } from "../../core/context.ts";
import type { NamedPolicy } from "../../core/pipeline.ts";
import type { Logger } from "../../observe/logger.ts";
import type { WafConfig, WafRuleConfig } from "../schema.ts";
import { BUILTIN_CATEGORIES, BUILTIN_HEADERS, BUILTIN_RULES, type BuiltinRule } from "./builtin.ts";
import { compileLinearRegex, type LinearRegex, loadLinearRegex } from "../../core/linear_regex.ts";
import { compileValueMatcher, type ValueTest } from "./matcher.ts";
import { decodeForInspection, decodeJsonEscapes } from "./decode.ts";
import { peekBody } from "./body_prefix.ts";

type Action = "block" | "log";

interface CompiledRule {
  id: string;
  action: Action;
  methods: ReadonlySet<string> | null;
  path: ValueTest | null;
  query: ValueTest | null;
  headers: [string, ValueTest][];
  body: ValueTest | null;
}

/** The built-in rules chosen, as one combined pattern (one pass per value) plus each rule to name a hit. */
interface CompiledBuiltin {
  action: Action;
  any: LinearRegex;
  each: { rule: BuiltinRule; re: LinearRegex }[];
}

const utf8 = new TextDecoder();

/** What the rules look at, decoded on first use. */
class Inspection {
  private pathText: string | null = null;
  private queryText: string | null = null;
  bodyText: string | null = null;

  constructor(readonly ctx: RequestContext) {}

  get path(): string {
    return this.pathText ??= decodeForInspection(this.ctx.path, false);
  }

  get query(): string | null {
    if (this.ctx.query === "") return null;
    return this.queryText ??= decodeForInspection(this.ctx.query.slice(1), true);
  }

  header(name: string): string | null {
    return this.ctx.headers.get(name.toLowerCase());
  }

  /**
   * Whether a header test matches the field: its joined value or, when it was
   * sent more than once, any one line. An upstream may read only the first or
   * the last line (Go's Header.Get reads the first), so `X-Debug: 1` sent twice
   * must not pass an `equals: "1"` rule as `1, 1`. `name` is lower-case.
   */
  headerMatches(name: string, test: ValueTest): boolean {
    if (test(this.ctx.headers.get(name))) return true;
    const list = this.ctx.headers.list;
    let seen = 0;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === name) seen++;
    if (seen < 2) return false;
    for (let i = 0; i < list.length; i++) {
      const [n, v] = list[i]!;
      if (n === name && test(v)) return true;
    }
    return false;
  }
}

export interface FilterOptions {
  /** Where the filter runs, for log lines (`global` or the route name). */
  scope: string;
  logger: Logger;
}

/** Compiles the config into a policy, or null when it has nothing to check. */
export async function createRequestFilter(
  cfg: WafConfig,
  o: FilterOptions,
): Promise<NamedPolicy | null> {
  if (cfg.rules.length === 0 && cfg.builtin === false) return null;
  await loadLinearRegex();
  const rules = cfg.rules.map(compileRule);
  const builtin = compileBuiltin(cfg);
  if (rules.length === 0 && builtin === null) return null;
  const bodyBytes = cfg.body_bytes;
  const needsBody = builtin !== null || rules.some((r) => r.body !== null);

  const matched = (ctx: RequestContext, id: string, action: Action) => {
    o.logger.warn("request matched a filtering rule", {
      rule: id,
      action,
      scope: o.scope,
      request_id: ctx.requestId,
      method: ctx.method,
      path: ctx.path,
      client_ip: ctx.clientIp,
    });
  };

  const check = (view: Inspection): Response | null => {
    const ctx = view.ctx;
    for (const r of rules) {
      if (!ruleMatches(r, view)) continue;
      matched(ctx, r.id, r.action);
      if (r.action === "block") return ctx.refuse("request_blocked");
    }
    if (builtin !== null) {
      const hit = builtinHit(builtin, view);
      if (hit !== null) {
        matched(ctx, `builtin:${hit}`, builtin.action);
        if (builtin.action === "block") return ctx.refuse("request_blocked");
      }
    }
    return null;
  };

  return {
    name: "request_filter",
    policy: async (ctx, next) => {
      const view = new Inspection(ctx);
      if (needsBody && ctx.body !== null) {
        const prefix = await peekBody(ctx, bodyBytes);
        if (prefix !== null && prefix.length > 0) view.bodyText = bodyText(ctx, prefix);
      }
      return check(view) ?? next(ctx);
    },
  };
}

function compileRule(r: WafRuleConfig): CompiledRule {
  return {
    id: r.id,
    action: r.action,
    methods: r.methods ? new Set(r.methods) : null,
    path: r.path !== undefined ? compileValueMatcher(r.path) : null,
    query: r.query !== undefined ? compileValueMatcher(r.query) : null,
    headers: Object.entries(r.headers ?? {}).map((
      [n, m],
    ) => [n.toLowerCase(), compileValueMatcher(m)]),
    body: r.body !== undefined ? compileValueMatcher(r.body) : null,
  };
}

function ruleMatches(r: CompiledRule, view: Inspection): boolean {
  if (r.methods !== null && !r.methods.has(view.ctx.method)) return false;
  if (r.path !== null && !r.path(view.path)) return false;
  if (r.query !== null && !r.query(view.query)) return false;
  for (const [name, test] of r.headers) if (!view.headerMatches(name, test)) return false;
  if (r.body !== null && !r.body(view.bodyText)) return false;
  return true;
}

function compileBuiltin(cfg: WafConfig): CompiledBuiltin | null {
  if (cfg.builtin === false) return null;
  const categories = new Set<string>(cfg.builtin === true ? BUILTIN_CATEGORIES : cfg.builtin);
  const chosen = BUILTIN_RULES.filter((r) => categories.has(r.category));
  return {
    action: cfg.builtin_action,
    any: compileLinearRegex(chosen.map((r) => `(?:${r.pattern})`).join("|"), true),
    each: chosen.map((rule) => ({ rule, re: compileLinearRegex(rule.pattern, true) })),
  };
}

/** The id of the first built-in rule that matches any inspected value, or null. */
function builtinHit(b: CompiledBuiltin, view: Inspection): string | null {
  const values = [view.path, view.query, view.bodyText];
  for (const h of BUILTIN_HEADERS) values.push(view.header(h));
  for (const v of values) {
    if (v === null || !b.any.test(v)) continue;
    for (const { rule, re } of b.each) if (re.test(v)) return rule.id;
  }
  return null;
}

function bodyText(ctx: RequestContext, prefix: Uint8Array): string {
  const text = utf8.decode(prefix);
  const type = ctx.headers.get("content-type");
  if (type === null) return text;
  const media = mediaType(type);
  if (media === "application/x-www-form-urlencoded") return decodeForInspection(text, true);
  return media === "application/json" || media.endsWith("+json") ? decodeJsonEscapes(text) : text;
}

/** `application/json; charset=utf-8` is `application/json`. */
function mediaType(contentType: string): string {
  const semi = contentType.indexOf(";");
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}
