/**
 * The admin API: a small router on its own listener (loopback by default),
 * optionally behind a bearer token. Concerns register their endpoints here.
 */
import { errorResponse } from "../core/errors.ts";

export type AdminHandler = (
  req: Request,
  params: Record<string, string>,
) => Response | Promise<Response>;

interface AdminRoute {
  method: string;
  segments: string[];
  handler: AdminHandler;
  whileStarting: boolean;
}

export interface AdminRouteOptions {
  /** Answer before the first config is loaded (health, readiness, metrics); others get 503. */
  whileStarting?: boolean;
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Reads a JSON object body or answers 400 in the common shape. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown> | Response> {
  try {
    const v = await req.json();
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // Falls through to the refusal.
  }
  return errorResponse("bad_request", crypto.randomUUID(), {
    message: "Expected a JSON object body",
  });
}

export class AdminApi {
  private readonly routes: AdminRoute[] = [];
  constructor(
    private token: string | undefined,
    /** Whether a config is loaded; until then only `whileStarting` endpoints answer. */
    private readonly loaded: () => boolean = () => true,
  ) {}

  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** Registers `METHOD /path/{param}`. */
  add(method: string, path: string, handler: AdminHandler, o: AdminRouteOptions = {}): void {
    this.routes.push({
      method,
      segments: path.split("/").slice(1),
      handler,
      whileStarting: o.whileStarting ?? false,
    });
  }

  readonly handle = async (req: Request): Promise<Response> => {
    const id = crypto.randomUUID();
    const url = new URL(req.url);
    if (this.token !== undefined && !this.authorised(req)) {
      return errorResponse("missing_credentials", id, {
        headers: { "www-authenticate": 'Bearer realm="admin"' },
      });
    }
    const segs = url.pathname.split("/").slice(1);
    const allow = new Set<string>();
    for (const r of this.routes) {
      const params = matchSegments(r.segments, segs);
      if (!params) continue;
      if (r.method !== req.method && !(r.method === "GET" && req.method === "HEAD")) {
        allow.add(r.method);
        continue;
      }
      if (!r.whileStarting && !this.loaded()) return errorResponse("not_ready", id);
      try {
        return await r.handler(req, params);
      } catch (e) {
        console.error(
          JSON.stringify({ level: "error", msg: "admin handler failed", error: String(e) }),
        );
        return errorResponse("internal_error", id);
      }
    }
    if (allow.size) {
      return errorResponse("method_not_allowed", id, { headers: { allow: [...allow].join(", ") } });
    }
    return errorResponse("route_not_found", id, {
      message: `No admin endpoint at ${url.pathname}`,
    });
  };

  private authorised(req: Request): boolean {
    const h = req.headers.get("authorization") ?? "";
    const expected = `Bearer ${this.token}`;
    if (h.length !== expected.length) return false;
    let diff = 0;
    for (let i = 0; i < h.length; i++) diff |= h.charCodeAt(i) ^ expected.charCodeAt(i);
    return diff === 0;
  }
}

function matchSegments(pattern: string[], path: string[]): Record<string, string> | null {
  if (pattern.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith("{") && p.endsWith("}")) {
      if (path[i] === "") return null;
      params[p.slice(1, -1)] = decodeURIComponent(path[i]!);
    } else if (p !== path[i]) return null;
  }
  return params;
}
