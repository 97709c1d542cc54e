/** A RequestContext built by hand, for tests of compiled templates and keys. */
import { type Consumer, type Identity, RequestContext } from "../../lib/core/context.ts";
import { incomingOf } from "../../lib/server/incoming.ts";
import { HeaderEdits } from "../../lib/proxy/header_edits.ts";

export interface ContextOptions {
  method?: string;
  headers?: Record<string, string>;
  consumer?: Consumer;
  identity?: Identity;
  route?: string;
  params?: Record<string, string>;
  tls?: boolean;
  now?: number;
}

/** `url` is a full URL (`http://api.test/a?b=1`). */
export function makeContext(url: string, o: ContextOptions = {}): RequestContext {
  const u = new URL(url);
  const ctx = new RequestContext(
    incomingOf(new Request(url, { method: o.method ?? "GET", headers: o.headers ?? {} })),
    o.method ?? "GET",
    u.pathname,
    u.search,
    u.hostname,
    "127.0.0.1",
    "203.0.113.9",
    { name: "public", tls: o.tls ?? false },
    o.now ?? 0,
    0,
    "req-1",
    { traceId: "1".repeat(32), parentId: null, spanId: "2".repeat(16), flags: "01", state: null },
    new HeaderEdits(),
  );
  ctx.route = o.route ? { name: o.route } : null;
  ctx.params = o.params ?? null;
  ctx.consumer = o.consumer ?? null;
  ctx.identity = o.identity ?? null;
  return ctx;
}

export function consumer(id: string): Consumer {
  return { id, plan: null, scopes: new Set(), configured: true };
}
