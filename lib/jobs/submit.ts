/**
 * The terminal of an `async` route: instead of calling the upstream, append the
 * request to a Redis Stream as a job and answer 202 with where to poll for it.
 */
import { createHash } from "node:crypto";
import type { RouteConfig } from "../config/schema.ts";
import type { RequestContext } from "../core/context.ts";
import { GatewayError } from "../core/errors.ts";
import type { Handler } from "../core/pipeline.ts";
import type { Upstream } from "../proxy/upstream.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { capturedHeaders, type CaptureOptions, readBody } from "./capture.ts";
import { jobKey, streamKey } from "./keys.ts";
import { idempotencyScope, jobOwner } from "./owner.ts";
import { sharedJobStore } from "./shared.ts";
import type { JobState, NewJob } from "./store.ts";

/** RFC 9110 field value of visible ASCII; long enough for UUIDs and client-made keys. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

export interface JobSubmitOptions {
  /** The upstream the job is meant for (named in the entry so workers can route it). */
  choose: (ctx: RequestContext) => Upstream;
  capture: CaptureOptions;
}

export async function createJobSubmit(
  route: RouteConfig,
  b: BuildContext,
  o: JobSubmitOptions,
): Promise<Handler> {
  const cfg = route.async!;
  const { store, redis } = await sharedJobStore(b);
  const deps = b.deps;
  const stream = streamKey(redis.prefix, cfg.stream);
  const ttl = String(cfg.result_ttl);

  return async (ctx) => {
    const idempotencyKey = ctx.headers.get("idempotency-key");
    if (idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      return ctx.refuse("bad_request", {
        message: "The Idempotency-Key header must be 1 to 255 visible ASCII characters",
      });
    }
    let body;
    try {
      body = await readBody(ctx, cfg.max_body_bytes);
    } catch (e) {
      if (e instanceof GatewayError) return ctx.refuse(e.code, e.details);
      return ctx.refuse(ctx.signal.aborted ? "client_closed_request" : "bad_request", {
        message: "The request body could not be read",
      });
    }
    const id = crypto.randomUUID();
    const owner = jobOwner(ctx);
    const job: NewJob = {
      id,
      owner,
      route: route.name,
      stream,
      ttlMs: cfg.result_ttl,
      maxlen: cfg.maxlen,
      createdAt: ctx.now,
      idempotency: idempotencyKey === null ? null : {
        key: idempotencyKey,
        requestHash: requestHash(ctx, body),
        scope: idempotencyScope(ctx, owner),
      },
      entry: [
        "job",
        id,
        "route",
        route.name,
        "upstream",
        o.choose(ctx).name,
        "method",
        ctx.method,
        "path",
        ctx.upstreamPath,
        "headers",
        JSON.stringify(capturedHeaders(ctx, o.capture)),
        "body",
        body,
        "consumer",
        ctx.consumer?.id ?? "",
        "subject",
        ctx.identity?.subject ?? "",
        "request_id",
        ctx.requestId,
        "created_at",
        String(ctx.now),
        "result_key",
        jobKey(redis.prefix, id),
        "result_ttl_ms",
        ttl,
      ],
    };
    try {
      const result = await store.submit(job);
      switch (result.kind) {
        case "created":
          return accepted(id, "pending", false);
        case "conflict":
          return ctx.refuse("idempotency_conflict");
        case "existing": {
          const prior = await store.read(result.id);
          return accepted(result.id, prior?.state ?? "expired", true);
        }
      }
    } catch (e) {
      deps.redis.failed(redis.url, e);
      return ctx.refuse("store_unavailable");
    }
  };
}

/** What an Idempotency-Key stands for: the same method, target and body. */
function requestHash(ctx: RequestContext, body: Uint8Array): string {
  return createHash("sha256")
    .update(`${ctx.method} ${ctx.path}${ctx.query}\n`)
    .update(body)
    .digest("base64url");
}

function accepted(id: string, state: JobState | "expired", replayed: boolean): Response {
  const location = `/jobs/${id}`;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    location,
    "cache-control": "no-store",
  };
  if (replayed) headers["idempotent-replayed"] = "true";
  return new Response(
    JSON.stringify({ job_id: id, status: state, status_url: location }),
    { status: 202, headers },
  );
}
