/**
 * `GET /jobs/{id}` on the public listeners: a built-in route, compiled into the
 * plan when any route is async. It runs the same chain stages as a route (so
 * global CORS, default rate limits and, above all, auth apply) and answers only
 * the caller that created the job; everyone else gets the same 404 as for a job
 * that does not exist.
 */
import { Buffer } from "node:buffer";
import type { RouteConfig } from "../config/schema.ts";
import { compose, type Handler } from "../core/pipeline.ts";
import type { BuildContext } from "../plan/build_context.ts";
import { buildChain } from "../plan/chain.ts";
import type { CompiledRoute } from "../plan/plan.ts";
import type { RuntimeDeps } from "../plan/deps.ts";
import type { RedisConfig } from "../store/schema.ts";
import { JOB_ID } from "./keys.ts";
import { jobOwner } from "./owner.ts";
import { sharedJobStore } from "./shared.ts";
import type { JobRecord, JobStore } from "./store.ts";

/** Name of the built-in route in logs, metrics and `/routes` (not a name a config can use). */
export const JOB_STATUS_ROUTE = "@jobs";
export const JOB_STATUS_PATH = "/jobs/{id}";

/**
 * The status route, or null when no route is async. It accepts the credentials
 * of every async route (the union of their `auth` providers); semantic checks
 * make sure async routes either all use auth or none does.
 */
export async function buildJobStatusRoute(
  index: number,
  b: BuildContext,
): Promise<CompiledRoute | null> {
  const asyncRoutes = b.config.routes.filter((r) => r.async);
  if (asyncRoutes.length === 0) return null;
  const auth = [...new Set(asyncRoutes.flatMap((r) => r.auth ?? []))];
  const route: RouteConfig = {
    name: JOB_STATUS_ROUTE,
    match: { path_exact: JOB_STATUS_PATH, methods: ["GET"] },
    // The path is reserved: a user route under /jobs never shadows job status.
    priority: Number.MAX_SAFE_INTEGER,
    strip_prefix: false,
    forward_credentials: false,
    ...(auth.length > 0 ? { auth } : {}),
  };
  const policies = await buildChain(route, index, b);
  const { store, redis } = await sharedJobStore(b);
  return {
    name: route.name,
    index,
    config: route,
    rewrite: null,
    policies: [...policies.map((p) => p.name), "job_status"],
    handler: compose(policies, createJobStatus(store, redis, b.deps)),
  };
}

function createJobStatus(store: JobStore, redis: RedisConfig, deps: RuntimeDeps): Handler {
  return async (ctx) => {
    const id = ctx.params?.id ?? "";
    if (!JOB_ID.test(id)) return ctx.refuse("job_not_found");
    let job: JobRecord | null;
    try {
      job = await store.read(id);
    } catch (e) {
      deps.redis.failed(redis.url, e);
      return ctx.refuse("store_unavailable");
    }
    if (job === null || job.owner !== jobOwner(ctx)) return ctx.refuse("job_not_found");
    return render(id, job);
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function render(id: string, job: JobRecord): Response {
  const out: Record<string, unknown> = {
    job_id: id,
    status: job.state,
    created_at: iso(job.createdAt),
    attempts: job.attempts,
  };
  if (job.startedAt !== null) out.started_at = iso(job.startedAt);
  if (job.finishedAt !== null) out.finished_at = iso(job.finishedAt);
  if (job.result !== null) {
    const { status, headers, body } = job.result;
    const result: Record<string, unknown> = { status, headers };
    try {
      result.body = utf8.decode(body);
    } catch {
      result.body_base64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
        .toString("base64");
    }
    out.result = result;
  }
  if (job.error !== null) out.error = job.error;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "cache-control": "no-store",
  };
  if (job.state === "pending" || job.state === "running") headers["retry-after"] = "1";
  return new Response(JSON.stringify(out), { status: 200, headers });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
