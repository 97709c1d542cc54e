/**
 * routeAdmin(): the cluster's admin API sends a change of per-isolate state to
 * every worker, and waits for each for at most a bound. Fake workers answer as
 * the test says, or never; the bound is a timer that fires when the test says.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { type AdminWorker, routeAdmin } from "../../lib/cluster/admin_fanout.ts";
import { FakeTimer } from "./fake_timer.ts";
import { errorResponse } from "../../lib/core/errors.ts";
import { parsePromText } from "../observe/prom_text.ts";

type Answer = (req: Request, signal?: AbortSignal) => Response | Promise<Response>;

interface FakeWorker extends AdminWorker {
  got: string[];
  /** The signal of each request: aborted once routeAdmin gives up on it. */
  signals: (AbortSignal | undefined)[];
}

/** Workers 0, 1, ... answering every admin request as `answers` say; each keeps what it got. */
function workers(...answers: Answer[]): FakeWorker[] {
  return answers.map((answer, index) => {
    const got: string[] = [];
    const signals: (AbortSignal | undefined)[] = [];
    return {
      options: { index },
      got,
      signals,
      admin: async (req, signal) => {
        got.push(`${req.method} ${new URL(req.url).pathname} ${await req.text()}`);
        signals.push(signal);
        return answer(req, signal);
      },
    };
  });
}

/** Lets the event loop run until `cond` holds (fake workers and bodies settle in a few turns). */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 0));
  assertOk(cond(), `never: ${what}`);
}

const purged = (n = 2) => () => Response.json({ purged: n, prefix: "/a" });
const stopped = (i: number) => () => Promise.reject(new Error(`worker ${i} stopped`));
const never = () => new Promise<Response>(() => {});
const purge = () =>
  new Request("http://admin/cache/purge", { method: "POST", body: '{"prefix":"/a"}' });

/** An answer the test gives when it likes, with a body that says whether it was cancelled. */
function late() {
  const { promise, resolve } = Promise.withResolvers<Response>();
  let cancelled = false;
  const body = new ReadableStream({
    cancel: () => {
      cancelled = true;
    },
  });
  return {
    answer: () => promise,
    give: (status = 200) => resolve(new Response(body, { status })),
    cancelled: () => cancelled,
  };
}

Deno.test("routeAdmin() answers a purge that every worker made with the purged counts summed", async () => {
  // Until 2026-12-07 the first worker's count was the answer: 2 of the 9 entries purged.
  const timer = new FakeTimer();
  const ws = workers(purged(2), purged(3), purged(4));
  const res = await routeAdmin(purge(), ws, { timer: timer.arm });
  assertEquals([res.status, await res.json()], [200, { purged: 9, prefix: "/a" }]);
  assertEquals(ws.map((w) => w.got), new Array(3).fill(['POST /cache/purge {"prefix":"/a"}']));
  assertEquals(timer.armed.size, 0, "a timer of a worker that answered is still armed");
});

Deno.test("routeAdmin() answers a purge that another worker failed with that worker's error", async () => {
  // Until 2026-12-07 the first worker's 200 was the answer: the cache of the worker that
  // failed still held the entries, and nothing said so.
  const failing = () =>
    errorResponse("store_unavailable", "r1", { message: "The Redis cache could not be purged" });
  const res = await routeAdmin(purge(), workers(purged(), purged(), failing));
  assertEquals(res.status, 503);
  assertEquals((await res.json()).error.message, "The Redis cache could not be purged");
});

Deno.test("routeAdmin() leaves out a worker that stopped: it restarts with a new cache", async () => {
  const res = await routeAdmin(purge(), workers(purged(), stopped(1)));
  assertEquals([res.status, await res.json()], [200, { purged: 2, prefix: "/a" }]);
});

Deno.test("routeAdmin() says a change may have been made when the worker stopped before it answered", async () => {
  const add = new Request("http://admin/keys", { method: "POST", body: '{"consumer":"a"}' });
  const res = await routeAdmin(add, workers(stopped(0), purged()));
  assertEquals(res.status, 500);
  assertEquals(
    (await res.json()).error.message,
    "A worker could not answer: worker 0 stopped; the change may have been made",
  );
  const read = await routeAdmin(new Request("http://admin/keys"), workers(stopped(0)));
  assertEquals((await read.json()).error.message, "A worker could not answer: worker 0 stopped");
});

Deno.test("routeAdmin() answers /readyz 503 naming the workers that did not answer within the bound", async () => {
  const timer = new FakeTimer();
  const ready = () => Response.json({ status: "ready" });
  const ws = workers(ready, never, ready, never);
  const answering = routeAdmin(new Request("http://admin/readyz"), ws, {
    waitMs: 250,
    timer: timer.arm,
  });
  await until("each worker is asked", () => ws.every((w) => w.got.length === 1));
  assertEquals([...timer.armed.values()].map((t) => t.ms), [250, 250]);
  timer.fireAll();
  const res = await answering;
  assertEquals([res.status, await res.json()], [503, {
    status: "unresponsive",
    unresponsive_workers: [1, 3],
    waited_ms: 250,
  }]);
  // The handles are told to forget the questions; the others' were answered.
  assertEquals(ws.map((w) => w.signals[0]?.aborted), [false, true, false, true]);
});

Deno.test("routeAdmin() answers /readyz as before when every worker answers", async () => {
  const ready = () => Response.json({ status: "ready" });
  const draining = () => Response.json({ status: "draining" }, { status: 503 });
  const ok = await routeAdmin(new Request("http://admin/readyz"), workers(ready, ready));
  assertEquals([ok.status, await ok.json()], [200, { status: "ready" }]);
  const not = await routeAdmin(new Request("http://admin/readyz"), workers(ready, draining));
  assertEquals([not.status, await not.json()], [503, { status: "draining" }]);
});

Deno.test("routeAdmin() leaves out of /metrics the samples of a worker that did not answer, and says which in gateway_worker_unresponsive", async () => {
  const timer = new FakeTimer();
  const exposition = () =>
    new Response("# HELP gw_up Up.\n# TYPE gw_up gauge\ngw_up 1\n", {
      headers: { "content-type": "text/plain; version=0.0.4" },
    });
  const ws = workers(exposition, never, exposition);
  const scraping = routeAdmin(new Request("http://admin/metrics"), ws, { timer: timer.arm });
  await until("each worker is asked", () => ws.every((w) => w.got.length === 1));
  timer.fireAll();
  const res = await scraping;
  assertEquals(res.status, 200);
  const families = parsePromText(await res.text());
  // Worker 2 keeps its own label: the one left out does not shift it.
  assertEquals(families.get("gw_up")!.samples.map((s) => s.labels), [
    { worker: "0" },
    { worker: "2" },
  ]);
  const gauge = families.get("gateway_worker_unresponsive")!;
  assertEquals(gauge.type, "gauge");
  assertEquals(gauge.samples.map((s) => [s.labels, s.value]), [
    [{ worker: "0" }, 0],
    [{ worker: "1" }, 1],
    [{ worker: "2" }, 0],
  ]);
  assertOk(families.has("process_resident_memory_bytes"));
});

Deno.test("routeAdmin() answers a purge another worker does not answer with 504 worker_timeout saying to repeat it, and cancels the late answer's body", async () => {
  const timer = new FakeTimer();
  const stuck = late();
  const ws = workers(purged(), stuck.answer, purged());
  const purging = routeAdmin(purge(), ws, { waitMs: 300, timer: timer.arm });
  await until("each worker is asked", () => ws.every((w) => w.got.length === 1));
  timer.fireAll();
  const res = await purging;
  assertEquals(res.status, 504);
  const { error } = await res.json();
  assertEquals(
    [error.code, error.message, error.unresponsive_workers, error.waited_ms],
    [
      "worker_timeout",
      "Worker 1 did not answer POST /cache/purge within 300 ms: the change was made on the other workers and may not have been made there; repeat it",
      [1],
      300,
    ],
  );
  // The worker answers after all: the answer goes nowhere, and its body is not left open.
  stuck.give();
  await until("the late body is cancelled", stuck.cancelled);
});

Deno.test("routeAdmin() answers 504 worker_timeout when the first worker does not answer a read or a change, and gives a key write the credential wait on top", async () => {
  const timer = new FakeTimer();
  const o = { waitMs: 100, sharedWriteWaitMs: 700, timer: timer.arm };
  const cases = [
    { req: () => new Request("http://admin/config"), ms: 100, outcome: "" },
    { req: purge, ms: 100, outcome: "; the change may have been made" },
    {
      req: () => new Request("http://admin/keys", { method: "POST", body: "{}" }),
      ms: 700,
      outcome: "; the change may have been made",
    },
  ];
  for (const c of cases) {
    const ws = workers(never, purged());
    const answering = routeAdmin(c.req(), ws, o);
    await until("the first worker is asked", () => timer.armed.size === 1);
    const path = new URL(c.req().url).pathname;
    assertEquals([path, [...timer.armed.values()][0]!.ms], [path, c.ms]);
    timer.fireAll();
    const res = await answering;
    const { error } = await res.json();
    assertEquals(
      [res.status, error.code, error.message],
      [
        504,
        "worker_timeout",
        `Worker 0 did not answer ${c.req().method} ${path} within ${c.ms} ms${c.outcome}`,
      ],
    );
    assertEquals(ws[1]!.got, [], "a change the first worker did not answer went on");
  }
});

Deno.test("routeAdmin() answers /healthz in the main thread, whatever the workers do", async () => {
  const timer = new FakeTimer();
  const ws = workers(never, stopped(1));
  for (const method of ["GET", "HEAD"]) {
    const res = await routeAdmin(new Request("http://admin/healthz", { method }), ws, {
      timer: timer.arm,
    });
    assertEquals(res.status, 200);
    assertEquals(
      method === "GET" ? await res.json() : await res.text(),
      method === "GET" ? { status: "ok" } : "",
    );
  }
  assertEquals(ws.map((w) => w.got.length), [0, 0]);
  assertEquals(timer.armed.size, 0);
});
