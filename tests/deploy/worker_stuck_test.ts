/**
 * `--workers 2`, store memory: a key written through the admin API while one
 * worker does not take it. The cluster runs in-process with real worker isolates
 * on a real port; the test holds back the key changes the main thread posts to
 * one worker, which is what a stuck worker's main thread sees: no answer.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import type { Cluster, ClusterOptions } from "../../lib/cluster/cluster.ts";
import type { WorkerHandle } from "../../lib/cluster/worker_handle.ts";
import type { ToWorker } from "../../lib/cluster/messages.ts";
import { statuses } from "./process.ts";
import {
  type ClusterConfig,
  type InProcessCluster,
  withInProcessCluster,
} from "./in_process_cluster.ts";

const NOT_APPLIED = "workers have not applied a key or revocation change yet";

async function waitFor(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Keeps the key and revocation changes posted to worker `index` from reaching it until
 * `release`; `post` reaches the worker directly.
 */
function holdCredentials(cluster: Cluster, index: number) {
  const handle = (cluster as unknown as { workers: WorkerHandle[] }).workers[index]!;
  const worker = (handle as unknown as { worker: Worker }).worker;
  const post = (msg: ToWorker) => Worker.prototype.postMessage.call(worker, msg);
  const held: ToWorker[] = [];
  worker.postMessage = (msg: ToWorker) => {
    if (msg.type === "credentials") held.push(msg);
    else post(msg);
  };
  return { held, post, release: () => held.splice(0).forEach(post) };
}

const CONFIG: ClusterConfig = (port, admin, upstream, routes) =>
  `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
server: { config_watch: { enabled: false } }
auth: { keys: { kind: api_key, header: X-API-Key } }
consumers: [ { id: team-a } ]
upstreams: { echo: { targets: [ { url: "${upstream}" } ] } }
routes: ${routes}
`;

function withCluster(
  o: Pick<ClusterOptions, "credentialsApplyWaitMs" | "restarts">,
  fn: (c: InProcessCluster) => Promise<void>,
): Promise<void> {
  const routes = "[ { name: r, match: { path: / }, upstream: echo, auth: [keys] } ]";
  return withInProcessCluster(CONFIG, routes, o, (c) => fn({ ...c, public: `${c.public}/x` }));
}

function addKey(admin: string, key: string): Promise<Response> {
  return fetch(`${admin}/keys`, {
    method: "POST",
    body: JSON.stringify({ consumer: "team-a", key }),
  });
}

Deno.test("--workers 2, store memory: a worker that does not apply a new key holds the write only for the bound, is named in the log, and applies the key when it runs again", async () => {
  await withCluster(
    { credentialsApplyWaitMs: 300 },
    async ({ cluster, admin, public: url, logs }) => {
      const stuck = holdCredentials(cluster, 1);
      const started = performance.now();
      const added = await addKey(admin, "key-1");
      const took = performance.now() - started;
      assertEquals(added.status, 201, await added.text());
      assertOk(took >= 290, `answered after ${took} ms, before the bound`);
      assertOk(took < 3_000, `answered after ${took} ms`);
      const notApplied = () => logs().filter((l) => l.msg === NOT_APPLIED);
      assertEquals(notApplied().map((l) => [l.workers, l.waited_ms]), [[[1], 300]]);
      assertEquals(stuck.held.length, 1);

      // Meanwhile worker 1 does not know the key: the log line says why it refuses it.
      const meanwhile = await statuses(url, 64, { "x-api-key": "key-1" });
      assertEquals([meanwhile.includes(200), meanwhile.includes(401)], [true, true]);

      // It runs again: it applies the change, and its late answer changes nothing else.
      stuck.release();
      await waitFor(
        "worker 1 to take the key",
        async () => (await statuses(url, 12, { "x-api-key": "key-1" })).every((s) => s === 200),
      );
      assertEquals(notApplied().length, 1);
    },
  );
});

Deno.test("--workers 2, store memory: a worker that crashes while a key write waits for it does not hold the write, and restarts with the key", async () => {
  await withCluster(
    { credentialsApplyWaitMs: 10_000, restarts: { backoffMs: [20], stableMs: 60_000 } },
    async ({ cluster, admin, public: url, logs }) => {
      const stuck = holdCredentials(cluster, 1);
      const started = performance.now();
      const adding = addKey(admin, "key-2");
      await waitFor("the change to reach worker 1", () => stuck.held.length === 1);
      // An uncaught error in the worker (it applies a change without checking it).
      stuck.post({ type: "credentials", id: 0, change: null } as never);
      const added = await adding;
      assertEquals(added.status, 201, await added.text());
      const took = performance.now() - started;
      assertOk(took < 5_000, `answered after ${took} ms: it waited for the dead worker`);
      assertEquals(logs().filter((l) => l.msg === NOT_APPLIED), []);

      await waitFor("worker 1 to restart", () => logs().some((l) => l.msg === "worker restarted"));
      assertEquals(
        await statuses(url, 12, { "x-api-key": "key-2" }),
        new Array(12).fill(200),
      );
    },
  );
});
