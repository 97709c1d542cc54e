/** Admin endpoints of the response cache: `POST /cache/purge` and `GET /cache`. */
import type { Gateway } from "../server/gateway.ts";
import { json, readJsonObject } from "../server/admin.ts";
import { errorResponse } from "../core/errors.ts";

export function registerCacheAdmin(gw: Gateway): void {
  const caches = gw.deps.caches;
  gw.admin.add("POST", "/cache/purge", async (req) => {
    const body = await readJsonObject(req);
    if (body instanceof Response) return body;
    const prefix = body.prefix;
    if (typeof prefix !== "string" || !prefix.startsWith("/")) {
      return errorResponse("bad_request", crypto.randomUUID(), {
        message: 'Expected {"prefix": "/path"}: a path prefix starting with /',
      });
    }
    try {
      return json({ purged: await caches.purge(prefix), prefix });
    } catch (e) {
      gw.deps.logger.warn("cache purge failed", { prefix, error: String(e) });
      return errorResponse("store_unavailable", crypto.randomUUID(), {
        message: `The Redis cache could not be purged: ${(e as Error)?.message ?? e}`,
      });
    }
  });
  gw.admin.add("GET", "/cache", () =>
    json({
      memory: {
        entries: caches.memory.entries,
        bytes: caches.memory.bytes,
        max_bytes: caches.memory.capacity,
      },
    }));
}
