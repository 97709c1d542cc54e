/** Active health checks and passive outlier ejection through the gateway. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { type Behaviour, startFlaky } from "./flaky.ts";
import { oneUpstream, statuses, until, upstreamView } from "./support.ts";

async function target(g: TestGateway, upstream: string, i: number) {
  return (await upstreamView(g, upstream)).targets[i];
}

Deno.test("health checks: a failing target leaves the balancer and is readmitted when it recovers", async () => {
  let health: Behaviour = { status: 200 };
  const a = startFlaky(() => ({ status: 200, body: "a" }));
  const b = startFlaky((req) => (req.path === "/health" ? health : { status: 200, body: "b" }));
  const g = await startGateway(baseConfig(`
upstreams:
  api:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    health_check: { path: /health, interval_s: 0.05, timeout_ms: 100, healthy_threshold: 2, unhealthy_threshold: 2 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`));
  try {
    await until(async () => (await target(g, "api", 1)).health_check.last !== null);
    assertEquals(await statuses(`${g.url()}/`, 10), Array(10).fill(200));
    assertEquals(b.hits(), 5, "both targets serve while healthy");

    health = { status: 500 };
    const ejectMs = await until(async () => !(await target(g, "api", 1)).healthy);
    const t = await target(g, "api", 1);
    assertEquals([t.available, t.health_check.last.status], [false, 500]);
    assertEquals(await statuses(`${g.url()}/`, 10), Array(10).fill(200));
    assertEquals(b.hits(), 5, "no request reached the unhealthy target");

    health = "hang";
    await new Promise((r) => setTimeout(r, 200));
    assertOk(!(await target(g, "api", 1)).healthy, "a check that times out fails");

    health = { status: 200 };
    const readmitMs = await until(async () => (await target(g, "api", 1)).healthy);
    console.log(
      `interval 50 ms, thresholds 2/2: ejected in ${ejectMs.toFixed(0)} ms, readmitted in ${
        readmitMs.toFixed(0)
      } ms`,
    );
    assertEquals(await statuses(`${g.url()}/`, 10), Array(10).fill(200));
    assertEquals(b.hits(), 10, "back in the rotation");
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});

Deno.test("health checks: with every target unhealthy the route answers 503, or its fallback", async () => {
  const up = startFlaky((req) => (req.path === "/health" ? { status: 503 } : { status: 200 }));
  const g = await startGateway(baseConfig(`
upstreams:
  api:
    targets: [ { url: "${up.url}" } ]
    health_check: { interval_s: 0.05, unhealthy_threshold: 1, healthy_threshold: 1, expected_statuses: [200] }
routes:
  - name: degraded
    match: { path: /degraded }
    upstream: api
    fallback: { status: 200, headers: { X-Fallback: "yes" }, body: { items: [], degraded: true } }
  - { name: plain, match: { path: / }, upstream: api }
`));
  try {
    await until(async () => !(await target(g, "api", 0)).healthy);
    const res = await fetch(`${g.url()}/x`);
    await assertError(res, 503, "no_healthy_upstream");
    assertEquals(res.headers.get("retry-after"), "1");
    const fb = await fetch(`${g.url()}/degraded`);
    assertEquals(fb.status, 200);
    assertEquals(fb.headers.get("x-fallback"), "yes");
    assertEquals(fb.headers.get("content-type"), "application/json");
    assertEquals(await fb.json(), { items: [], degraded: true });
    assertEquals(up.hits(), 0);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("health checks: a reload that drops the check stops it; shutdown stops the rest", async () => {
  const up = startFlaky(() => ({ status: 200 }));
  const config = (check: boolean) =>
    baseConfig(oneUpstream(up.url, check ? "    health_check: { interval_s: 0.02 }" : ""));
  const g = await startGateway(config(true));
  try {
    await until(() => Promise.resolve(up.received.length >= 3));
    await Deno.writeTextFile(g.file, config(false));
    assertOk((await g.gw.reload("test")).ok);
    const settled = up.received.length;
    await new Promise((r) => setTimeout(r, 150));
    assertOk(up.received.length <= settled + 1, "checks stopped with the plan that had them");
    assertEquals(g.gw.deps.resilience.size, 1, "only the retry budget remains");
  } finally {
    await g.close();
    await up.close();
  }
  assertEquals(g.gw.deps.resilience.size, 0);
});

Deno.test("outlier ejection: consecutive 5xx eject a target for a growing period", async () => {
  const clock = new ManualClock(0);
  const a = startFlaky(() => ({ status: 200 }));
  const b = startFlaky(() => ({ status: 500 }));
  const g = await startGateway(
    baseConfig(`
upstreams:
  api:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    outlier_detection: { consecutive_failures: 3, base_ejection_s: 10, max_ejection_s: 60 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`),
    { clock },
  );
  try {
    const first = await statuses(`${g.url()}/`, 10);
    assertEquals(first.filter((s) => s === 500).length, 3, "three failures, then ejected");
    assertEquals(b.hits(), 3);
    let t = await target(g, "api", 1);
    assertEquals([t.healthy, t.available, t.outlier.ejected], [false, false, true]);
    assertEquals(t.outlier.ejected_until, new Date(10_000).toISOString());

    clock.advance(10_000);
    await statuses(`${g.url()}/`, 10);
    assertEquals(b.hits(), 6, "readmitted after 10 s, ejected again after 3 more failures");
    t = await target(g, "api", 1);
    assertEquals(t.outlier.ejected_until, new Date(30_000).toISOString(), "twice as long");

    clock.advance(20_000);
    b.handler = () => ({ status: 200 });
    assertEquals(await statuses(`${g.url()}/`, 10), Array(10).fill(200));
    assertEquals(b.hits(), 11);
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});
