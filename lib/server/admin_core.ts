/** Admin endpoints of the core: health, readiness, reload and the route table. */
import type { Gateway } from "./gateway.ts";
import { json } from "./admin.ts";

export function registerCoreAdmin(gw: Gateway): void {
  const a = gw.admin;
  a.add("GET", "/healthz", () => json({ status: "ok" }), { whileStarting: true });
  a.add("GET", "/readyz", () => {
    const ready = !gw.draining && gw.holder.current !== null;
    return json(
      { status: ready ? "ready" : gw.draining ? "draining" : "starting" },
      ready ? 200 : 503,
    );
  }, { whileStarting: true });
  a.add("POST", "/reload", async () => {
    const r = await gw.reload("admin");
    return json(r, r.ok ? 200 : 422);
  });
  a.add("GET", "/routes", () =>
    json({
      routes: gw.plan.routes.map((r) => ({
        name: r.name,
        match: r.config.match,
        priority: r.config.priority,
        upstream: r.config.upstream ?? null,
        split: r.config.split ?? null,
        policies: r.policies,
      })),
    }));
}
