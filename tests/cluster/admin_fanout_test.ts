/**
 * routeAdmin(): the cluster's admin API sends a change of per-isolate state to
 * every worker. Fake workers answer as the test says.
 */
import { assertEquals } from "../helpers/assert.ts";
import { type AdminWorker, routeAdmin } from "../../lib/cluster/admin_fanout.ts";
import { errorResponse } from "../../lib/core/errors.ts";

/** A worker that answers every admin request with `answer`, and keeps the bodies it got. */
function worker(answer: () => Response | Promise<Response>): AdminWorker & { got: string[] } {
  const got: string[] = [];
  return {
    got,
    admin: async (req) => {
      got.push(`${req.method} ${new URL(req.url).pathname} ${await req.text()}`);
      return answer();
    },
  };
}

const purged = () => Response.json({ purged: 2, prefix: "/a" });
const stopped = (i: number) => () => Promise.reject(new Error(`worker ${i} stopped`));
const purge = () =>
  new Request("http://admin/cache/purge", { method: "POST", body: '{"prefix":"/a"}' });

Deno.test("routeAdmin() answers a purge that every worker made with the first worker's answer", async () => {
  const workers = [worker(purged), worker(purged), worker(purged)];
  const res = await routeAdmin(purge(), workers);
  assertEquals([res.status, await res.json()], [200, { purged: 2, prefix: "/a" }]);
  assertEquals(workers.map((w) => w.got), new Array(3).fill(['POST /cache/purge {"prefix":"/a"}']));
});

Deno.test("routeAdmin() answers a purge that another worker failed with that worker's error", async () => {
  // Until 2026-12-07 the first worker's 200 was the answer: the cache of the worker that
  // failed still held the entries, and nothing said so.
  const failing = () =>
    errorResponse("store_unavailable", "r1", { message: "The Redis cache could not be purged" });
  const res = await routeAdmin(purge(), [worker(purged), worker(purged), worker(failing)]);
  assertEquals(res.status, 503);
  assertEquals((await res.json()).error.message, "The Redis cache could not be purged");
});

Deno.test("routeAdmin() leaves out a worker that stopped: it restarts with a new cache", async () => {
  const res = await routeAdmin(purge(), [worker(purged), worker(stopped(1))]);
  assertEquals([res.status, await res.json()], [200, { purged: 2, prefix: "/a" }]);
});

Deno.test("routeAdmin() says a change may have been made when the worker stopped before it answered", async () => {
  const add = new Request("http://admin/keys", { method: "POST", body: '{"consumer":"a"}' });
  const res = await routeAdmin(add, [worker(stopped(0)), worker(purged)]);
  assertEquals(res.status, 500);
  assertEquals(
    (await res.json()).error.message,
    "A worker could not answer: worker 0 stopped; the change may have been made",
  );
  const read = await routeAdmin(new Request("http://admin/keys"), [worker(stopped(0))]);
  assertEquals((await read.json()).error.message, "A worker could not answer: worker 0 stopped");
});
