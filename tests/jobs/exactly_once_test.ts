/**
 * The acceptance run: 1,000 async requests through the gateway, two
 * worker processes, one killed (SIGKILL) mid-way and restarted. Every job ends
 * done exactly once with the upstream's answer, and idempotent retries create
 * no second job. Real redis-server, real upstream, real worker processes.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";
import {
  jobsConfig,
  PREFIX,
  redisClient,
  spawnWorker,
  STREAM_KEY,
  waitFor,
  type WorkerProcess,
} from "./helpers.ts";

const JOBS = 1000;
const CONCURRENCY = 4;

/** Runs `fn` over `items` with at most `width` at a time. */
async function pooled<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

Deno.test("1,000 jobs, two workers, one killed mid-way: each done exactly once with the upstream's answer", async () => {
  const calls = new Map<string, number>();
  // While held, the upstream keeps every call waiting: worker A is killed with its whole
  // concurrency in flight, so its death always leaves entries for the others to reclaim.
  let hold: PromiseWithResolvers<void> | undefined;
  let held = 0;
  // Answers depend only on the request, as an upstream honouring Idempotency-Key would.
  const up = startUpstream(async (req) => {
    const job = req.headers.get("x-job-id") ?? "";
    calls.set(job, (calls.get(job) ?? 0) + 1);
    const input = await req.text();
    if (hold) {
      held++;
      await hold.promise;
    }
    await new Promise((r) => setTimeout(r, 15));
    return Response.json({ job, input });
  });
  const redis = await startRedis();
  const db = redisClient(redis.url);
  const g = await startGateway(jobsConfig(redis.url, up.url));
  const workerArgs = [
    `--redis=${redis.url}`,
    `--stream=${STREAM_KEY}`,
    `--upstream=${up.url}`,
    `--concurrency=${CONCURRENCY}`,
    // Only the killed worker's jobs may be called twice: a live worker's must not idle this
    // long in flight, even when a loaded machine slows a 15 ms call down (1 s did not do).
    "--claim-idle-ms=3000",
    "--claim-interval-ms=200",
    "--block-ms=500",
  ];
  const workers: WorkerProcess[] = [];
  try {
    const [a, b] = await Promise.all([spawnWorker(workerArgs), spawnWorker(workerArgs)]);
    workers.push(a!, b!);

    const submitOne = async (i: number) => {
      const res = await fetch(`${g.url()}/orders/${i}`, {
        method: "POST",
        body: JSON.stringify({ n: i }),
        headers: { "content-type": "application/json", "idempotency-key": `order-${i}` },
      });
      const body = await res.json();
      assertEquals(res.status, 202, JSON.stringify(body));
      return body.job_id as string;
    };
    const submitting = pooled([...Array(JOBS).keys()], 16, submitOne);
    // Its failure is reported where it is awaited, below, not as an unhandled rejection.
    submitting.catch(() => {});

    await waitFor(
      "worker A to complete 100 jobs",
      () => a!.count("completed") >= 100 ? 1 : undefined,
      30_000,
    );
    hold = Promise.withResolvers();
    await waitFor(
      "both workers to have every slot waiting on the upstream",
      () => held >= 2 * CONCURRENCY ? 1 : undefined,
      30_000,
    );
    await a!.kill();
    hold.resolve();
    hold = undefined;
    const killedAfter = a!.count("completed");
    const ids = await submitting;
    workers.push(await spawnWorker(workerArgs));

    // Client retries of every tenth request, some after their job is done.
    const retried = await pooled([...Array(JOBS / 10).keys()].map((k) => k * 10), 8, submitOne);
    retried.forEach((id, k) => assertEquals(id, ids[k * 10]));
    assertEquals(await db.xlen(STREAM_KEY), JOBS);

    await waitFor("every entry to be delivered and acknowledged", async () => {
      const [pending] = await db.xpending(STREAM_KEY, "workers") as [number];
      const groups = await db.xinfo("GROUPS", STREAM_KEY) as unknown[][];
      const info = new Map(groups[0]!.reduce<[unknown, unknown][]>((pairs, v, i, all) => {
        if (i % 2 === 0) pairs.push([v, all[i + 1]]);
        return pairs;
      }, []));
      return pending === 0 && info.get("lag") === 0 ? true : undefined;
    }, 40_000);

    const statuses = await pooled(ids, 16, async (id) => {
      const res = await fetch(`${g.url()}/jobs/${id}`);
      assertEquals(res.status, 200);
      return await res.json();
    });
    statuses.forEach((s, i) => {
      assertEquals(s.status, "done");
      assertEquals(s.result.status, 200);
      assertEquals(JSON.parse(s.result.body), { job: ids[i], input: JSON.stringify({ n: i }) });
    });

    // Completed exactly once, across the killed worker, the survivor and the restarted one.
    // The completion script acknowledges the entry as it writes the result, so a job the killed
    // worker completed is never reclaimed; what it may not have done is log it before dying.
    const completions = new Map<string, number>();
    for (const w of workers) {
      for (const e of w.events) {
        if (e.event === "completed") completions.set(e.job!, (completions.get(e.job!) ?? 0) + 1);
      }
    }
    assertOk([...completions.values()].every((n) => n === 1), "a job was completed twice");
    const unlogged = ids.filter((id) => !completions.has(id));
    assertOk(unlogged.length <= CONCURRENCY, `${unlogged.length} completions unaccounted for`);
    const killedName = a!.events.find((e) => e.event === "ready")!.worker;
    for (const id of unlogged) {
      assertEquals(await db.hget(`${PREFIX}job:${id}`, "worker"), killedName);
    }
    assertEquals((await db.xpending(STREAM_KEY, "workers"))[0], 0);

    // The dead worker's unfinished jobs were reclaimed. Only jobs it was calling the upstream
    // for when it died can have been called twice (with the same Idempotency-Key).
    const reclaimed = workers.slice(1).flatMap((w) => w.events)
      .filter((e) => e.event === "reclaimed").reduce((n, e) => n + (e.count as number), 0);
    assertOk(reclaimed >= 1, "nothing was reclaimed from the killed worker");
    assertEquals(calls.size, JOBS);
    const repeated = ids.filter((id) => calls.get(id)! > 1);
    assertOk(repeated.length <= CONCURRENCY, `${repeated.length} jobs were called twice`);
    for (const id of repeated) {
      assertOk(statuses[ids.indexOf(id)].attempts >= 2, `job ${id} repeated without a reclaim`);
    }
    console.log(
      `killed worker completed ${killedAfter}; reclaimed ${reclaimed}; ` +
        `upstream calls ${[...calls.values()].reduce((x, y) => x + y, 0)} for ${JOBS} jobs; ` +
        `${unlogged.length} completed by the killed worker as it died`,
    );
  } finally {
    hold?.resolve();
    await Promise.all(workers.map((w) => w.stop()));
    await g.close();
    db.disconnect();
    await up.close();
    await redis.close();
  }
});
