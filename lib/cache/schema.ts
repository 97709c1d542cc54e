import { z } from "zod";
import { headerName, positiveInt, statusCode } from "../config/common.ts";

/** Statuses a cache may store without explicit freshness (RFC 9110 §15.1), less 206 and 405/414/501. */
const HEURISTIC_STATUSES = [200, 203, 204, 300, 301, 308, 404, 410];
const PARTIAL_CONTENT = 206;

export const cacheSchema = z.strictObject({
  ttl_s: z.number().positive().meta({
    description: "Freshness of a stored response; the upstream's max-age/s-maxage can shorten it",
  }),
  vary: z.array(headerName.refine((h) => h !== "*", {
    error: "* is not a header: responses with Vary: * are never stored",
  })).default([]).meta({
    description: "Request headers that select between stored responses (e.g. Accept-Language)",
  }),
  normalize_query: z.boolean().default(true).meta({
    description: "Sort query parameters by name (as sent, repeated names in their order) so that " +
      "?a=1&b=2 and ?b=2&a=1 share an entry",
  }),
  stale_if_error_s: z.number().min(0).default(0).meta({
    description: "How long past its TTL a response may be served when the upstream fails " +
      "(not one marked must-revalidate, proxy-revalidate or s-maxage)",
  }),
  max_body_bytes: positiveInt.default(1_048_576).meta({
    description: "Larger responses are passed through, not stored",
  }),
  statuses: z.array(statusCode.refine((s) => s !== PARTIAL_CONTENT, {
    error: "206 cannot be cached: a partial answer would be served to requests for the whole " +
      "(requests with Range bypass the cache)",
  })).min(1).default(HEURISTIC_STATUSES),
  store: z.enum(["memory", "redis"]).optional().meta({
    description: "Where entries live; default: store.kind",
  }),
  ignore_cookies: z.boolean().default(false).meta({
    description: "Cache answers to requests that carry Cookie as if they carried none (the " +
      "upstream does not personalise by cookie); by default such requests bypass the cache " +
      "unless vary lists Cookie",
  }),
}).refine((c) => !(c.ignore_cookies && c.vary.some((h) => h.toLowerCase() === "cookie")), {
  path: ["ignore_cookies"],
  error: "ignore_cookies contradicts vary: [Cookie]; keep one",
});

export type CacheConfig = z.output<typeof cacheSchema>;
