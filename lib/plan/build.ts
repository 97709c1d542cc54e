/** Compiles a validated configuration into a Plan. Nothing here runs per request. */
import { dirname } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import { compose } from "../core/pipeline.ts";
import { RouteTable } from "../router/table.ts";
import { twoParamsInASegment } from "../router/path_pattern.ts";
import { loadLinearRegex } from "../core/linear_regex.ts";
import { compileRewrite } from "../router/rewrite.ts";
import { VersionNegotiator } from "../router/version.ts";
import { Upstream } from "../proxy/upstream.ts";
import { CidrSet } from "../security/cidr.ts";
import { BuildContext } from "./build_context.ts";
import { buildChain, GLOBAL_STAGES } from "./chain.ts";
import { buildTerminal } from "./terminal.ts";
import { createDispatch } from "./dispatch.ts";
import { buildJobStatusRoute } from "../jobs/status.ts";
import { type CompiledRoute, Plan } from "./plan.ts";
import type { RuntimeDeps } from "./deps.ts";
import { createObserver } from "../observe/observer.ts";
import { loadRedisClient } from "../store/redis.ts";

export async function buildPlan(loaded: LoadedConfig, deps: RuntimeDeps): Promise<Plan> {
  const c = loaded.config;
  const upstreams = new Map<string, Upstream>();
  const b = new BuildContext(c, deps, loaded.source, dirname(loaded.file), upstreams);
  // Registered first, so released last: what this plan built on the client lets go of it first.
  if (c.store.redis) b.onDispose(deps.redis.hold(c.store.redis));
  b.onDispose(() => Promise.all([...upstreams.values()].map((u) => u.dispose())).then(() => {}));
  try {
    if (c.store.redis) await loadRedisClient();
    for (const [name, u] of Object.entries(c.upstreams)) {
      upstreams.set(name, new Upstream(name, u, deps, c.store));
    }
    const versions = c.versioning
      ? new VersionNegotiator(c.versioning, c.routes.flatMap((r) => r.match.version ?? []))
      : null;
    const paths = c.routes.flatMap((r) => [r.match.path ?? "", r.match.path_exact ?? ""]);
    if (paths.some(twoParamsInASegment)) await loadLinearRegex();
    const routes: CompiledRoute[] = [];
    for (const [index, route] of c.routes.entries()) {
      const policies = await buildChain(route, index, b);
      routes.push({
        name: route.name,
        index,
        config: route,
        rewrite: compileRewrite(route.strip_prefix, route.rewrite, c.security.merge_slashes),
        policies: [...policies.map((p) => p.name), route.async ? "job_submit" : "upstream"],
        handler: compose(policies, await buildTerminal(route, index, b)),
      });
    }
    const jobStatus = await buildJobStatusRoute(routes.length, b);
    if (jobStatus) routes.push(jobStatus);
    const table = new RouteTable(
      routes.map((r) => ({ payload: r, match: r.config.match, priority: r.config.priority })),
      versions,
    );
    const globals = [];
    for (const stage of GLOBAL_STAGES) globals.push(...await stage.build(b));
    const handle = compose(globals, createDispatch(table, versions));
    const observer = await createObserver(b);
    return new Plan(
      c,
      loaded.hash,
      loaded.file,
      routes,
      table,
      upstreams,
      versions,
      {
        requestIdHeader: c.server.request_id_header.toLowerCase(),
        trustRequestId: c.server.trust_request_id,
        via: c.server.via,
        tracing: c.observe.tracing.enabled,
        mergeSlashes: c.security.merge_slashes,
        allowPathParameters: c.security.allow_path_parameters,
        trustedProxies: new CidrSet(c.security.trusted_proxies),
        observer,
        clientIpHeader: c.security.client_ip_header,
      },
      handle,
      b.disposers,
      b.activators,
      b.filesRead,
    );
  } catch (e) {
    for (const d of b.disposers.reverse()) await Promise.resolve().then(d).catch(() => {});
    throw e;
  }
}
