/**
 * CORS (Fetch standard, "CORS protocol"): preflights are answered here and
 * never reach the upstream; other requests get the response headers that let
 * a browser read them. The gateway owns CORS on a route that configures it:
 * the upstream's own `Access-Control-*` response headers are replaced.
 *
 * Origins are exact (`https://app.example.com`) or wildcard subdomains
 * (`https://*.example.com`: one or more labels before `.example.com`, same
 * scheme and port; never `https://example.com`, `https://evil-example.com` or
 * `https://example.com.evil.net`). `Origin: null` (sandboxed documents, file:
 * URLs) is never matched by a listed origin.
 */
import type { NamedPolicy } from "../core/pipeline.ts";
import type { CorsConfig } from "./schema.ts";
import { responseFields } from "../core/parsed_response.ts";
import type { FieldEditor } from "../core/response_fields.ts";

interface OriginPattern {
  scheme: string;
  /** Exact host, or the suffix after `*` (`.example.com`) for a wildcard. */
  host: string;
  wildcard: boolean;
  /** Explicit non-default port, or "". */
  port: string;
}

const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/([^/?#:\[\]]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;
const LABELS = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/;
const DEFAULT_PORT: Record<string, string> = { http: "80", https: "443" };

function splitOrigin(text: string): OriginPattern | null {
  const m = ORIGIN.exec(text.toLowerCase());
  if (!m) return null;
  const scheme = m[1]!;
  const port = m[3] === undefined || m[3] === DEFAULT_PORT[scheme] ? "" : m[3];
  const host = m[2]!;
  return host.startsWith("*.")
    ? { scheme, host: host.slice(1), wildcard: true, port }
    : { scheme, host, wildcard: false, port };
}

/** Why a configured origin is unusable, or null if it is fine. */
export function originProblem(text: string): string | null {
  if (text === "*") return null;
  if (text.toLowerCase() === "null") {
    return "the null origin is sent by sandboxed documents and file: URLs; allowing it " +
      "lets any of them read responses";
  }
  const p = splitOrigin(text);
  if (!p || p.host.includes("*")) {
    return "expected * or an origin such as https://app.example.com or https://*.example.com " +
      "(scheme, host and optional port; no path, no trailing slash)";
  }
  if (p.wildcard && !LABELS.test(p.host.slice(1))) {
    return "a wildcard origin needs a domain after *. (https://*.example.com)";
  }
  if (p.wildcard && !p.host.slice(1).includes(".")) {
    return "a wildcard over a top-level domain (*.com) would allow almost any site";
  }
  return null;
}

function originKey(p: OriginPattern): string {
  return `${p.scheme}://${p.host}${p.port ? `:${p.port}` : ""}`;
}

/** Compiles the allowed origins into one test of an `Origin` header value. */
export function compileOrigins(origins: readonly string[]): (origin: string) => boolean {
  if (origins.includes("*")) return () => true;
  const exact = new Set<string>();
  const wildcards: OriginPattern[] = [];
  for (const o of origins) {
    const p = splitOrigin(o)!;
    if (p.wildcard) wildcards.push(p);
    else exact.add(originKey(p));
  }
  return (origin) => {
    const lower = origin.toLowerCase();
    if (exact.has(lower)) return true;
    if (wildcards.length === 0) return false;
    const p = splitOrigin(lower);
    if (!p || p.wildcard) return false;
    if (exact.has(originKey(p))) return true; // spelled with its default port
    for (const w of wildcards) {
      if (p.scheme !== w.scheme || p.port !== w.port) continue;
      const h = p.host;
      if (h.length > w.host.length && h.endsWith(w.host)) {
        if (LABELS.test(h.slice(0, h.length - w.host.length))) return true;
      }
    }
    return false;
  };
}

const OWNED = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-expose-headers",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-max-age",
];

/** Appends a field name to Vary unless it is already there (or Vary is `*`). */
export function addVary(headers: FieldEditor, name: string): void {
  const v = headers.get("vary");
  if (v === null || v.trim() === "") {
    headers.set("vary", name);
    return;
  }
  const lower = name.toLowerCase();
  for (const t of v.split(",")) {
    const token = t.trim().toLowerCase();
    if (token === lower || token === "*") return;
  }
  headers.set("vary", `${v}, ${name}`);
}

export function corsPolicy(c: CorsConfig): NamedPolicy {
  const allowed = compileOrigins(c.origins);
  const anyOrigin = c.origins.includes("*");
  // With a list, the answer depends on Origin; with `*` (never with credentials) it does not.
  const varies = !anyOrigin;
  const methods: ReadonlySet<string> = new Set(c.methods);
  const reflectHeaders = c.headers.includes("*");
  const headers = new Set(c.headers.map((h) => h.toLowerCase()));
  const preflightFixed: [string, string][] = [
    ["access-control-allow-methods", c.methods.join(", ")],
    ["access-control-max-age", String(c.max_age_s)],
    ["vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"],
  ];
  if (!reflectHeaders && c.headers.length) {
    preflightFixed.push(["access-control-allow-headers", c.headers.join(", ")]);
  }
  if (c.credentials) preflightFixed.push(["access-control-allow-credentials", "true"]);
  const expose = c.expose_headers.length ? c.expose_headers.join(", ") : null;
  const allowOrigin = (origin: string) => (anyOrigin && !c.credentials ? "*" : origin);
  const refusal = (message: string) => ({
    message,
    headers: { vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" },
  });

  return {
    name: "cors",
    policy: async (ctx, next) => {
      const req = ctx.headers;
      const origin = req.get("origin");
      const asked = ctx.method === "OPTIONS" && origin !== null
        ? req.get("access-control-request-method")
        : null;
      if (asked !== null) {
        if (!allowed(origin!)) {
          return ctx.refuse("forbidden", refusal("The origin is not allowed by the CORS policy"));
        }
        if (!methods.has(asked.toUpperCase())) {
          return ctx.refuse(
            "forbidden",
            refusal(`The method ${asked} is not allowed by the CORS policy`),
          );
        }
        const requested = req.get("access-control-request-headers");
        const out = new Headers(preflightFixed);
        out.set("access-control-allow-origin", allowOrigin(origin!));
        if (requested !== null && requested.trim() !== "") {
          if (reflectHeaders) out.set("access-control-allow-headers", requested);
          else {
            for (const h of requested.split(",")) {
              const name = h.trim().toLowerCase();
              if (name !== "" && !headers.has(name)) {
                return ctx.refuse(
                  "forbidden",
                  refusal(`The header ${name} is not allowed by the CORS policy`),
                );
              }
            }
          }
        }
        return new Response(null, { status: 204, headers: out });
      }
      const res = await next(ctx);
      // An upstream's fields stay a list: `res.headers` would copy and re-check every one.
      const h = responseFields(res);
      for (const name of OWNED) h.delete(name);
      // `*` is one answer for every request, so it goes on those without Origin too: a cache
      // may hand a browser's CORS request the answer to its plain one (Fetch §3.2.5).
      const answer = anyOrigin ? "*" : origin !== null && allowed(origin) ? origin : null;
      if (answer !== null) {
        h.set("access-control-allow-origin", answer);
        if (c.credentials) h.set("access-control-allow-credentials", "true");
        if (expose) h.set("access-control-expose-headers", expose);
      }
      if (varies) addVary(h, "Origin");
      return res;
    },
  };
}
