/** Active health checks and passive outlier ejection through the gateway. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
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
    health_check: { path: /health, interval_s: 0.05, timeout_ms: 2000, healthy_threshold: 2, unhealthy_threshold: 2 }
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

    // Checks time out after 2 s: a 100 ms timeout failed checks of a healthy target on a
    // loaded machine, twice in a row, and ejected it.
    health = "hang";
    await until(async () => (await target(g, "api", 1)).health_check.last.status === null, 10_000);
    const timedOut = await target(g, "api", 1);
    assertOk(!timedOut.healthy, "a check that times out fails");
    assertOk(timedOut.health_check.last.error, "the timed-out check says why");

    health = { status: 200 };
    const readmitMs = await until(async () => (await target(g, "api", 1)).healthy, 10_000);
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

/** Log lines of `msg`, as parsed JSON. */
// deno-lint-ignore no-explicit-any
function logged(lines: string[], msg: string): any[] {
  return lines.map((l) => JSON.parse(l)).filter((l) => l.msg === msg);
}

Deno.test("outlier ejection: when every target fails, max_ejection_percent (50 by default) keeps half in", async () => {
  const clock = new ManualClock(0);
  const lines: string[] = [];
  const logger = new JsonLogger("info", (l) => lines.push(l), () => clock.now());
  let answer = 500;
  const a = startFlaky(() => ({ status: answer }));
  const b = startFlaky(() => ({ status: answer }));
  const g = await startGateway(
    baseConfig(`
upstreams:
  api:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    outlier_detection: { consecutive_failures: 2, base_ejection_s: 10, max_ejection_s: 60 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`),
    { clock, logger },
  );
  try {
    // A shared cause: both fail. a is ejected at its 2nd failure; b's ejection would empty the pool.
    assertEquals(await statuses(`${g.url()}/`, 10), Array(10).fill(500), "no 503: b still serves");
    assertEquals([a.hits(), b.hits()], [2, 8]);
    let view = await upstreamView(g, "api");
    assertEquals(view.outlier, {
      max_ejection_percent: 50,
      max_ejected: 1,
      ejected: 1,
      ejections_refused: 7,
    });
    assertEquals(view.available_targets, 1);
    assertEquals([view.targets[0].outlier.ejected, view.targets[1].outlier.ejected], [true, false]);
    assertEquals(view.targets[1].outlier.ejections_refused, 7);
    const refused = logged(lines, "target ejection refused");
    assertEquals(refused.length, 1, "logged once per interval, not per refusal");
    assertEquals(
      [refused[0].target, refused[0].ejected, refused[0].max_ejected],
      [b.url, 1, 1],
    );

    // a's ejection ends while all still fail: b, whose streak stayed full, goes out at its next
    // failure, and a's new streak is refused in turn. They take turns; never both out.
    clock.advance(10_000);
    assertEquals(await statuses(`${g.url()}/`, 4), Array(4).fill(500));
    view = await upstreamView(g, "api");
    assertEquals([view.targets[0].outlier.ejected, view.targets[1].outlier.ejected], [false, true]);
    assertEquals([view.targets[1].outlier.ejections, view.outlier.ejected], [1, 1]);
    assertEquals(logged(lines, "target ejection refused").length, 2, "a new interval logs again");

    // The targets recover: traffic reaches a at once, not after b's 10 s.
    answer = 200;
    const before = a.hits();
    assertEquals(await statuses(`${g.url()}/`, 3), [200, 200, 200]);
    assertEquals(a.hits(), before + 3);
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});

Deno.test("outlier ejection: a single target is not ejected under 100%; 100 restores ejecting all", async () => {
  const clock = new ManualClock(0);
  const up = startFlaky(() => ({ status: 502 }));
  const config = (percent: string) =>
    baseConfig(oneUpstream(
      up.url,
      `    outlier_detection: { consecutive_failures: 2, base_ejection_s: 10${percent} }`,
    ));
  const g = await startGateway(config(""), { clock });
  try {
    assertEquals(await statuses(`${g.url()}/`, 5), Array(5).fill(502));
    let t = await target(g, "api", 0);
    assertEquals([t.available, t.outlier.ejected, t.outlier.ejections_refused], [true, false, 4]);

    await Deno.writeTextFile(g.file, config(", max_ejection_percent: 100"));
    assertOk((await g.gw.reload("test")).ok);
    t = await target(g, "api", 0);
    assertEquals(
      t.outlier.ejections_refused,
      4,
      "a reload that changes only the cap keeps the record",
    );
    assertEquals(await statuses(`${g.url()}/`, 2), [502, 503], "the full streak ejects at once");
    assertEquals(up.hits(), 6);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("outlier ejection: a reload that shrinks the pool readmits the ejections beyond the cap", async () => {
  const clock = new ManualClock(0);
  const lines: string[] = [];
  const logger = new JsonLogger("info", (l) => lines.push(l), () => clock.now());
  const servers = [0, 1, 2, 3].map(() => startFlaky(() => ({ status: 503 })));
  const config = (n: number) =>
    baseConfig(`
upstreams:
  api:
    targets: [ ${servers.slice(0, n).map((s) => `{ url: "${s.url}" }`).join(", ")} ]
    outlier_detection: { consecutive_failures: 1, base_ejection_s: 10 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`);
  const g = await startGateway(config(4), { clock, logger });
  try {
    await statuses(`${g.url()}/`, 1);
    clock.advance(1);
    await statuses(`${g.url()}/`, 3);
    // Two of four out: the first until 10 s, the second 1 ms later; the other two refused.
    let view = await upstreamView(g, "api");
    assertEquals(view.outlier, {
      max_ejection_percent: 50,
      max_ejected: 2,
      ejected: 2,
      ejections_refused: 2,
    });
    assertEquals(view.targets.map((t: { outlier: { ejected: boolean } }) => t.outlier.ejected), [
      true,
      true,
      false,
      false,
    ]);

    // Keep the two ejected targets only: 50% of two is one, so the one ending sooner comes back.
    await Deno.writeTextFile(g.file, config(2));
    assertOk((await g.gw.reload("test")).ok);
    view = await upstreamView(g, "api");
    assertEquals(view.outlier.ejected, 1);
    assertEquals([view.targets[0].outlier.ejected, view.targets[1].outlier.ejected], [false, true]);
    assertEquals(view.targets[1].outlier.ejected_until, new Date(10_001).toISOString(), "kept");
    const readmitted = logged(lines, "target readmitted");
    assertEquals(readmitted.map((l) => [l.target, l.reason]), [
      [servers[0]!.url, "max_ejection_percent"],
    ]);
    assertEquals(await statuses(`${g.url()}/`, 1), [503]);
    assertEquals(servers[0]!.hits(), 2, "served, not refused as no_healthy_upstream");
  } finally {
    await g.close();
    await Promise.all(servers.map((s) => s.close()));
  }
});

Deno.test("health checks are not limited by max_ejection_percent", async () => {
  const a = startFlaky((req) => (req.path === "/health" ? { status: 503 } : { status: 200 }));
  const b = startFlaky((req) => (req.path === "/health" ? { status: 503 } : { status: 200 }));
  const g = await startGateway(baseConfig(`
upstreams:
  api:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    health_check: { interval_s: 0.05, unhealthy_threshold: 1, healthy_threshold: 1 }
    outlier_detection: { max_ejection_percent: 50 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`));
  try {
    await until(async () => (await upstreamView(g, "api")).available_targets === 0);
    await assertError(await fetch(`${g.url()}/`), 503, "no_healthy_upstream");
    assertEquals(a.hits() + b.hits(), 0);
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});

/**
 * A target whose accept queue is full until `openAfterMs`: the check's connect waits for its
 * SYN to be sent again (1 s on Linux), then the target answers each request after `answerMs`.
 */
async function slowConnectTarget(openAfterMs: number, answerMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const fillers = Array.from(
    { length: 3 },
    () => Deno.connect({ hostname: "127.0.0.1", port }).catch(() => null),
  );
  await new Promise((r) => setTimeout(r, 100));
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    await new Promise((r) => setTimeout(r, openAfterMs));
    for (const f of fillers) f.then((c) => c?.close()).catch(() => {});
    for await (const c of listener) {
      conns.push(c);
      (async () => {
        const n = await c.read(new Uint8Array(4096)).catch(() => null);
        if (n === null) return;
        await new Promise((r) => setTimeout(r, answerMs));
        await c.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"))
          .catch(() => {});
      })();
    }
  })();
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by the gateway
        }
      }
      await serving.catch(() => {});
    },
  };
}

Deno.test("health checks: timeout_ms bounds the whole check, its connect included", async () => {
  // Connected after about 1 s (under timeout_ms), answered 1 s later: 2 s in all.
  const slow = await slowConnectTarget(300, 1000);
  const g = await startGateway(baseConfig(oneUpstream(
    slow.url,
    "    health_check: { interval_s: 60, timeout_ms: 1500, unhealthy_threshold: 1 }",
  )));
  try {
    await until(async () => (await target(g, "api", 0)).health_check.last !== null, 8000);
    const t = await target(g, "api", 0);
    // Until 2026-12-07 the deadline began once connected: this check passed in about 2 s.
    assertEquals([t.health_check.last.ok, t.health_check.last.status, t.healthy], [
      false,
      null,
      false,
    ]);
    assertOk(t.health_check.last.ms < 1900, `the check took ${t.health_check.last.ms} ms`);
  } finally {
    await g.close();
    await slow.close();
  }
});
