/**
 * `--workers 2`: the admin API while one worker does not answer. The cluster
 * runs in-process with real worker isolates on real ports; the test holds back
 * the admin requests and reloads the main thread posts to one worker, which is
 * what the main thread sees of a stuck isolate (a busy loop): no answer. The
 * bounds are shortened to a few hundred ms.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import type { Cluster } from "../../lib/cluster/cluster.ts";
import type { WorkerHandle } from "../../lib/cluster/worker_handle.ts";
import type { ToWorker } from "../../lib/cluster/messages.ts";
import { parsePromText } from "../observe/prom_text.ts";
import { statuses } from "./process.ts";
import { type InProcessCluster, withInProcessCluster } from "./in_process_cluster.ts";

const ADMIN_WAIT_MS = 300;
const RELOAD_WAIT_MS = 600;

function handleOf(cluster: Cluster, index: number): WorkerHandle {
  return (cluster as unknown as { workers: WorkerHandle[] }).workers[index]!;
}

/** Questions the handle still waits on: a question it gave up on must not stay. */
function waitingOn(handle: WorkerHandle): number {
  return (handle as unknown as { pending: Map<number, unknown> }).pending.size;
}

/**
 * Keeps the admin requests and reloads posted to worker `index` from reaching it
 * until `release`; everything else (traffic, shutdown) goes on as usual.
 */
function holdQuestions(cluster: Cluster, index: number) {
  const worker = (handleOf(cluster, index) as unknown as { worker: Worker }).worker;
  // An admin request's body is transferred with it.
  const post = (msg: ToWorker, transfer: Transferable[]) =>
    Worker.prototype.postMessage.call(worker, msg, { transfer });
  const held: [ToWorker, Transferable[]][] = [];
  worker.postMessage = (msg: ToWorker, transfer?: Transferable[] | StructuredSerializeOptions) => {
    const list = Array.isArray(transfer) ? transfer : transfer?.transfer ?? [];
    if (msg.type === "admin" || msg.type === "reload") held.push([msg, list]);
    else post(msg, list);
  };
  return {
    held,
    /** The worker runs again: what was held reaches it, and what follows goes straight on. */
    release: () => {
      delete (worker as { postMessage?: unknown }).postMessage;
      held.splice(0).forEach(([m, t]) => post(m, t));
    },
  };
}

const CONFIG = (port: number, admin: number, upstream: string, routes: string) =>
  `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
server: { config_watch: { enabled: false } }
upstreams: { echo: { targets: [ { url: "${upstream}" } ] } }
routes:
${routes}`;

const ROUTE_R = "  - { name: r, match: { path: / }, upstream: echo, cache: { ttl_s: 60 } }\n";
const ROUTE_S = "  - { name: s, match: { path: /s }, upstream: echo }\n";

function withCluster(fn: (c: InProcessCluster) => Promise<void>): Promise<void> {
  return withInProcessCluster(CONFIG, ROUTE_R, {
    adminAnswerWaitMs: ADMIN_WAIT_MS,
    reloadWaitMs: RELOAD_WAIT_MS,
  }, fn);
}

/** The answer, and how long it took (ms). */
async function timed(req: Promise<Response>): Promise<{ res: Response; ms: number }> {
  const started = performance.now();
  const res = await req;
  return { res, ms: performance.now() - started };
}

async function scrape(admin: string) {
  const res = await fetch(`${admin}/metrics`);
  assertEquals(res.status, 200);
  return parsePromText(await res.text());
}

const samples = (
  families: Awaited<ReturnType<typeof scrape>>,
  name: string,
): [string | undefined, number][] =>
  families.get(name)?.samples.map((s) => [s.labels.worker, s.value]) ?? [];

const purgeAll = (admin: string) =>
  fetch(`${admin}/cache/purge`, { method: "POST", body: '{"prefix":"/"}' });

Deno.test("--workers 2 with a worker that does not answer: /readyz, /metrics, a purge and a reload answer within their bounds, and say which worker", async () => {
  await withCluster(async ({ cluster, admin, rewrite, logs }) => {
    const stuck = holdQuestions(cluster, 1);

    const ready = await timed(fetch(`${admin}/readyz`));
    assertEquals([ready.res.status, await ready.res.json()], [503, {
      status: "unresponsive",
      unresponsive_workers: [1],
      waited_ms: ADMIN_WAIT_MS,
    }]);
    assertOk(ready.ms >= ADMIN_WAIT_MS - 10, `answered after ${ready.ms} ms, before the bound`);
    assertOk(ready.ms < 3_000, `answered after ${ready.ms} ms`);

    const metrics = await scrape(admin);
    assertEquals(samples(metrics, "gateway_worker_unresponsive"), [["0", 0], ["1", 1]]);
    assertEquals(metrics.get("gateway_worker_unresponsive")!.type, "gauge");
    assertEquals(samples(metrics, "gateway_build_info"), [["0", 1]]);

    const purged = await timed(purgeAll(admin));
    const purgeError = (await purged.res.json()).error;
    assertEquals(
      [purged.res.status, purgeError.code, purgeError.unresponsive_workers],
      [504, "worker_timeout", [1]],
    );
    assertEquals(
      purgeError.message,
      `Worker 1 did not answer POST /cache/purge within ${ADMIN_WAIT_MS} ms: the change was made on the other workers and may not have been made there; repeat it`,
    );
    assertOk(purged.ms < 3_000, `answered after ${purged.ms} ms`);

    await rewrite(ROUTE_R + ROUTE_S);
    const reloaded = await timed(fetch(`${admin}/reload`, { method: "POST" }));
    const reloadError = (await reloaded.res.json()).error;
    assertEquals(
      [reloaded.res.status, reloadError.code, reloadError.unresponsive_workers],
      [504, "worker_timeout", [1]],
    );
    assertEquals(
      reloadError.message,
      `Worker 1 did not answer the reload within ${RELOAD_WAIT_MS} ms: the new config is not confirmed there; worker 0 runs it (a stuck worker takes it when it runs again)`,
    );
    assertOk(reloaded.ms >= RELOAD_WAIT_MS - 10, `answered after ${reloaded.ms} ms`);
    assertOk(reloaded.ms < 5_000, `answered after ${reloaded.ms} ms`);
    const incomplete = logs().filter((l) => l.msg === "cluster reload incomplete");
    assertEquals(incomplete.map((l) => [l.unconfirmed_workers, l.waited_ms]), [[
      [1],
      RELOAD_WAIT_MS,
    ]]);
    // Worker 0 (which answers reads) runs the new config.
    const config = await (await fetch(`${admin}/config`)).json();
    assertEquals(config.config.routes.map((r: { name: string }) => r.name), ["r", "s"]);

    // The handle gave up on each question: none is left waiting for the stuck worker.
    assertEquals([stuck.held.length, waitingOn(handleOf(cluster, 1))], [4, 0]);

    // It runs again: it answers everything late (dropped), takes the reload, and is ready.
    stuck.release();
    const readyAgain = await fetch(`${admin}/readyz`);
    assertEquals([readyAgain.status, await readyAgain.json()], [200, { status: "ready" }]);
    assertEquals(samples(await scrape(admin), "gateway_worker_unresponsive"), [
      ["0", 0],
      ["1", 0],
    ]);
    assertEquals(waitingOn(handleOf(cluster, 1)), 0);
  });
});

Deno.test("--workers 2, every worker answering: /readyz, /metrics, a purge (its counts summed) and a reload answer as before", async () => {
  await withCluster(async ({ admin, public: url, rewrite }) => {
    const ready = await fetch(`${admin}/readyz`);
    assertEquals([ready.status, await ready.json()], [200, { status: "ready" }]);

    // One entry per path, cached by whichever worker the new connection reached, until both
    // workers hold some: a purge's answer must count both workers' entries.
    let paths = 0;
    const misses = async () =>
      samples(await scrape(admin), "gateway_cache_lookups_total").filter(([, v]) => v > 0);
    while ((await misses()).length < 2) {
      assertOk(paths < 200, "the kernel sent every connection to one worker");
      for (const _ of new Array(8)) assertEquals(await statuses(`${url}/p${paths++}`, 1), [200]);
    }
    const metrics = await scrape(admin);
    assertEquals(samples(metrics, "gateway_worker_unresponsive"), [["0", 0], ["1", 0]]);
    assertEquals(samples(metrics, "gateway_build_info"), [["0", 1], ["1", 1]]);
    const lookups = metrics.get("gateway_cache_lookups_total")!.samples;
    assertEquals(lookups.every((s) => s.labels.result === "miss"), true);
    assertEquals(lookups.reduce((n, s) => n + s.value, 0), paths);

    const purged = await purgeAll(admin);
    assertEquals([purged.status, await purged.json()], [200, { purged: paths, prefix: "/" }]);

    await rewrite(ROUTE_R + ROUTE_S);
    const reloaded = await fetch(`${admin}/reload`, { method: "POST" });
    const body = await reloaded.json();
    assertEquals([reloaded.status, body.ok, body.errors], [200, true, []]);
    assertEquals(Object.keys(body).sort(), ["errors", "hash", "ok"]);
  });
});

Deno.test("--workers 2: reloads run one at a time, a second one waits for the first to end", async () => {
  await withCluster(async ({ cluster, rewrite }) => {
    const held = holdQuestions(cluster, 1);
    await rewrite(ROUTE_R + ROUTE_S);
    const first = cluster.reload("first");
    for (let i = 0; i < 500 && held.held.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(held.held.map(([m]) => m.type), ["reload"]);
    const second = cluster.reload("second");
    // Until 2026-12-07 the second went to the workers at once, beside the first.
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(held.held.length, 1);
    held.release();
    assertEquals([(await first).ok, (await second).ok], [true, true]);
  });
});

Deno.test("--workers 2 with the first worker not answering: /healthz is the main thread's answer, and asks no worker", async () => {
  await withCluster(async ({ cluster, admin }) => {
    const first = holdQuestions(cluster, 0);
    try {
      for (const method of ["GET", "HEAD"]) {
        const res = await fetch(`${admin}/healthz`, { method });
        assertEquals(res.status, 200, method);
        assertEquals(
          method === "GET" ? await res.json() : await res.text(),
          method === "GET" ? { status: "ok" } : "",
        );
      }
      assertEquals(first.held.length, 0);
      // The same worker still holds /readyz: the probe that says a worker is stuck.
      const ready = await fetch(`${admin}/readyz`);
      assertEquals([ready.status, (await ready.json()).unresponsive_workers], [503, [0]]);
      assertEquals(first.held.map(([m]) => m.type), ["admin"]);
    } finally {
      first.release();
    }
  });
});
