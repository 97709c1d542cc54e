/**
 * The admin API: a small router on its own listener (loopback by default),
 * optionally behind a bearer token. Concerns register their endpoints here.
 */
import { errorResponse } from "../core/errors.ts";
import { bufferUpTo } from "../transform/buffer.ts";

/** Admin bodies are small JSON objects (a key, a revocation): a larger one is not read. */
const MAX_BODY_BYTES = 64 * 1024;

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

/** Reads a JSON object body or answers 400 in the common shape, saying what the body was. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown> | Response> {
  let buffered;
  try {
    buffered = await bufferUpTo(req.body, MAX_BODY_BYTES);
  } catch {
    return badBody("The body could not be read");
  }
  if (buffered.kind === "over") {
    if (buffered.body instanceof ReadableStream) await buffered.body.cancel().catch(() => {});
    return errorResponse("payload_too_large", crypto.randomUUID(), {
      message: `Admin request bodies are at most ${MAX_BODY_BYTES} bytes`,
    });
  }
  const text = new TextDecoder().decode(buffered.bytes);
  if (text.trim() === "") return badBody("The body is empty: expected a JSON object");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return badBody(`The body is not JSON: ${(e as Error).message}`);
  }
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    return v as Record<string, unknown>;
  }
  return badBody(`Expected a JSON object body, got ${jsonKind(v)}`);
}

function badBody(message: string): Response {
  return errorResponse("bad_request", crypto.randomUUID(), { message });
}

function jsonKind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
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

  /** The registered endpoints, as `METHOD /path/{param}` (for tests and docs). */
  endpoints(): string[] {
    return this.routes.map((r) => `${r.method} /${r.segments.join("/")}`);
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
    if (segs.some((s) => decodePathParam(s) === null)) {
      return errorResponse("bad_request", id, {
        message: "The path has malformed percent-encoding",
      });
    }
    const allow = new Set<string>();
    for (const r of this.routes) {
      const params = matchSegments(r.segments, segs);
      if (!params) continue;
      if (r.method !== req.method && !(r.method === "GET" && req.method === "HEAD")) {
        allow.add(r.method);
        // HEAD is answered wherever GET is (RFC 9110 §9.3.2), so Allow names it too.
        if (r.method === "GET") allow.add("HEAD");
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
    return bearerMatches(req, this.token);
  }
}

const BEARER = /^bearer +(\S+) *$/i;
const utf8 = new TextEncoder();

/**
 * Whether `Authorization` carries `token` as a Bearer credential (the scheme in
 * any case, RFC 7235 §2.1); true when no token is configured. The comparison
 * takes the same time whatever the credential, its length included.
 */
export function bearerMatches(req: Request, token: string | undefined): boolean {
  if (token === undefined) return true;
  const got = utf8.encode(BEARER.exec(req.headers.get("authorization") ?? "")?.[1] ?? "");
  const want = utf8.encode(token);
  let diff = got.length ^ want.length;
  for (let i = 0; i < want.length; i++) diff |= (got[i] ?? 0) ^ want[i]!;
  return diff === 0;
}

/** A percent-decoded path segment; null when its escapes are not valid UTF-8. */
function decodePathParam(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

function matchSegments(pattern: string[], path: string[]): Record<string, string> | null {
  if (pattern.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith("{") && p.endsWith("}")) {
      if (path[i] === "") return null;
      params[p.slice(1, -1)] = decodePathParam(path[i]!)!;
    } else if (p !== path[i]) return null;
  }
  return params;
}
