import { z } from "zod";
import { duration, positiveInt } from "../config/common.ts";

/** `async` on a route: accept the request as a job on a Redis Stream and answer 202. */
export const asyncSchema = z.strictObject({
  stream: z.string().min(1).regex(/^[^\s]+$/, { error: "expected a stream name without spaces" })
    .meta({
      description: "Stream the jobs are appended to; its key is store.redis.prefix + stream",
    }),
  result_ttl: duration.prefault("1h").meta({
    description: "How long a job and its result are kept (from creation, again once started, " +
      "and again once done); also how long an Idempotency-Key is remembered",
  }),
  max_body_bytes: positiveInt.default(1_048_576).meta({
    description: "Largest request body queued with a job; larger ones get 413",
  }),
  maxlen: positiveInt.default(100_000).meta({
    description: "Approximate cap on the stream's length (XADD MAXLEN ~); the oldest entries are " +
      "trimmed past it, read or not",
  }),
});

export type AsyncConfig = z.output<typeof asyncSchema>;
