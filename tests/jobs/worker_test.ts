/**
 * The reference worker (`examples/worker.ts`, a real child process) against a
 * real redis-server, gateway and upstream: forwarding, results, reclaiming the
 * jobs of dead workers without redoing finished ones, giving up, draining.
 */
import { Buffer } from "node:buffer";
import { gunzipSync, gzipSync } from "node:zlib";
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { closedPort, startUpstream, type TestServer } from "../helpers/upstream.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { beginJob, type WorkerIdentity } from "../../lib/jobs/worker_protocol.ts";
import { PREFIX, readAsConsumer, spawnWorker, STREAM_KEY, waitFor, withJobs } from "./helpers.ts";

/** An upstream that answers 201 with what it got, after `delayMs`. */
function answering(delayMs = 0): TestServer {
  return startUpstream(async (req, r) => {
    const body = await req.text();
    if (delayMs) await new Promise((res) => setTimeout(res, delayMs));
    return Response.json(
      { method: r.method, url: r.url, body, job: req.headers.get("x-job-id") },
      { status: 201, headers: { "x-upstream": "yes" } },
    );
  });
}

async function submit(g: TestGateway, path: string, init: RequestInit = {}): Promise<string> {
  const res = await fetch(`${g.url()}${path}`, { method: "POST", ...init });
  const body = await res.json();
  assertEquals(res.status, 202, JSON.stringify(body));
  return body.job_id;
}

async function status(g: TestGateway, id: string) {
  return await (await fetch(`${g.url()}/jobs/${id}`)).json();
}

function settled(g: TestGateway, id: string, timeoutMs = 15_000) {
  return waitFor(`job ${id} to finish`, async () => {
    const s = await status(g, id);
    return s.status === "done" || s.status === "failed" ? s : undefined;
  }, timeoutMs);
}

function callsFor(up: TestServer, id: string): number {
  return up.received.filter((r) => r.headers.get("x-job-id") === id).length;
}

Deno.test("worker: forwards the queued request and stores the upstream's answer", async () => {
  await withJobs(answering(), async ({ g, redis, up }) => {
    const worker = await spawnWorker([
      `--redis=${redis.url}`,
      `--stream=${STREAM_KEY}`,
      `--upstream=orders=${up.url}`,
      "--block-ms=200",
    ]);
    try {
      const id = await submit(g, "/orders/9?x=1", {
        body: "payload",
        headers: { "x-client": "c1", "content-type": "text/plain" },
      });
      const s = await settled(g, id);
      assertEquals(s.status, "done");
      assertEquals(s.attempts, 1);
      assertEquals(s.result.status, 201);
      assertEquals(s.result.headers["x-upstream"], "yes");
      assertEquals(JSON.parse(s.result.body), {
        method: "POST",
        url: "/orders/9?x=1",
        body: "payload",
        job: id,
      });
      const seen = up.received.find((r) => r.headers.get("x-job-id") === id)!;
      assertEquals(seen.headers.get("idempotency-key"), id);
      assertEquals(seen.headers.get("x-client"), "c1");
      assertEquals(seen.headers.get("content-type"), "text/plain");
      assertEquals(seen.headers.get("x-forwarded-for"), "127.0.0.1");

      // A job for an upstream this worker does not serve fails with the reason.
      const other = await submit(g, "/other", { body: "x" });
      const o = await settled(g, other);
      assertEquals(o.status, "failed");
      assertEquals(o.error, 'no upstream for "other"');
      assertEquals(callsFor(up, other), 0);
    } finally {
      await worker.stop();
    }
    assertEquals(worker.count("stopped"), 1);
  }, {
    upstreams: `  other: { targets: [ { url: "http://127.0.0.1:9" } ] }\n`,
    routes:
      `  - { name: other, match: { path: /other }, upstream: other, async: { stream: orders } }\n`,
  });
});

/** An upstream that gzips its answer when the request accepts gzip (`always`: whatever it accepts). */
function gzipping(always: boolean): TestServer {
  return startUpstream((req) => {
    const text = `{"answer":"${"42 ".repeat(50)}"}`;
    if (!always && !/gzip/.test(req.headers.get("accept-encoding") ?? "")) {
      return new Response(text, { headers: { "content-type": "application/json" } });
    }
    return new Response(new Uint8Array(gzipSync(Buffer.from(text))), {
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
    });
  });
}

Deno.test("worker: a compressing upstream's answer is stored as sent, headers and body agreeing", async () => {
  // fetch decoded gzip and br bodies on its own but kept Content-Encoding and Content-Length:
  // the result said gzip (and the compressed length) over a plain body.
  const text = `{"answer":"${"42 ".repeat(50)}"}`;
  for (const always of [false, true]) {
    await withJobs(gzipping(always), async ({ g, redis, up }) => {
      const worker = await spawnWorker([
        `--redis=${redis.url}`,
        `--stream=${STREAM_KEY}`,
        `--upstream=${up.url}`,
        "--block-ms=200",
      ]);
      try {
        const id = await submit(g, "/orders", {
          body: "x",
          headers: { "accept-encoding": "gzip, br" },
        });
        const { result } = await settled(g, id);
        if (always) {
          assertEquals(result.headers["content-encoding"], "gzip");
          const raw = Buffer.from(result.body_base64, "base64");
          assertEquals(result.headers["content-length"], String(raw.length));
          assertEquals(gunzipSync(raw).toString(), text);
        } else {
          assertEquals(result.headers["content-encoding"], undefined);
          assertEquals(result.body, text);
        }
        // The stored answer is read as JSON later, never by the client that sent the request.
        assertEquals(up.received[0]?.headers.get("accept-encoding"), "identity");
      } finally {
        await worker.stop();
      }
    });
  }
});

Deno.test("worker: reclaims a dead worker's jobs; one it finished before XACK is not run again", async () => {
  await withJobs(answering(), async ({ g, redis, db, up }) => {
    const finished = await submit(g, "/orders", { body: "finished" });
    const started = await submit(g, "/orders", { body: "started" });
    const unread = await submit(g, "/orders", { body: "unread" });
    const poison = await submit(g, "/orders", { body: "poison" });

    // A worker that read all four, then died at a different step of each.
    const ghost: WorkerIdentity = { stream: STREAM_KEY, group: "workers", name: "ghost" };
    const byJob = new Map((await readAsConsumer(db, ghost)).map((e) => [e.job, e]));
    const now = Date.now();
    // Called the upstream and wrote the result, but died before XACK.
    assertEquals(await beginJob(db, ghost, byJob.get(finished)!, now, 2), "run");
    await db.hset(`${PREFIX}job:${finished}`, {
      state: "done",
      status: 200,
      headers: "{}",
      body: "the ghost's answer",
      finished_at: now,
    });
    // Died while calling the upstream.
    assertEquals(await beginJob(db, ghost, byJob.get(started)!, now, 2), "run");
    // Crashed the worker twice already: this is its last allowed attempt... used up.
    await beginJob(db, ghost, byJob.get(poison)!, now, 2);
    await beginJob(db, ghost, byJob.get(poison)!, now, 2);

    const worker = await spawnWorker([
      `--redis=${redis.url}`,
      `--stream=${STREAM_KEY}`,
      `--upstream=${up.url}`,
      "--claim-idle-ms=300",
      "--claim-interval-ms=100",
      "--max-attempts=2",
      "--block-ms=200",
    ]);
    try {
      await waitFor("every entry to be acknowledged", async () => {
        const [pending] = await db.xpending(STREAM_KEY, "workers") as [number];
        return pending === 0 ? true : undefined;
      });
      const [f, s, u, p] = await Promise.all(
        [finished, started, unread, poison].map((id) => status(g, id)),
      );
      assertEquals([f.status, f.result.body, callsFor(up, finished)], [
        "done",
        "the ghost's answer",
        0,
      ]);
      assertEquals([s.status, s.attempts, callsFor(up, started)], ["done", 2, 1]);
      assertEquals(JSON.parse(s.result.body).body, "started");
      assertEquals([u.status, u.attempts, callsFor(up, unread)], ["done", 1, 1]);
      assertEquals([p.status, p.error, callsFor(up, poison)], [
        "failed",
        "gave up after 2 attempts",
        0,
      ]);
      const reclaimed = worker.events.filter((e) => e.event === "reclaimed")
        .reduce((n, e) => n + (e.count as number), 0);
      assertEquals(reclaimed, 4);
      const skipped = worker.events.filter((e) => e.event === "skipped").map((e) => e.reason);
      assertEquals(skipped.sort(), ["done", "gave_up"]);
    } finally {
      await worker.stop();
    }
  });
});

Deno.test("worker: a job slower than --claim-idle-ms is not taken over by its own worker", async () => {
  // XAUTOCLAIM returns the worker's own entries too once they idle: it started the job a
  // second time (a second upstream call), and a third claim failed it (gave up) while the
  // first call was about to succeed.
  await withJobs(answering(1500), async ({ g, redis, up }) => {
    const worker = await spawnWorker([
      `--redis=${redis.url}`,
      `--stream=${STREAM_KEY}`,
      `--upstream=${up.url}`,
      "--claim-idle-ms=200",
      "--claim-interval-ms=50",
      "--max-attempts=2",
      "--block-ms=200",
    ]);
    try {
      const id = await submit(g, "/orders", { body: "slow" });
      const s = await settled(g, id);
      assertEquals([s.status, s.attempts, callsFor(up, id)], ["done", 1, 1]);
      assertEquals(worker.count("reclaimed"), 0);
    } finally {
      await worker.stop();
    }
  });
});

Deno.test("worker: an unreachable upstream is retried through reclaim, then the job fails", async () => {
  const dead = `http://127.0.0.1:${closedPort()}`;
  await withJobs(answering(), async ({ g, redis }) => {
    const worker = await spawnWorker([
      `--redis=${redis.url}`,
      `--stream=${STREAM_KEY}`,
      `--upstream=${dead}`,
      "--claim-idle-ms=200",
      "--claim-interval-ms=100",
      "--max-attempts=3",
      "--block-ms=200",
    ]);
    try {
      const id = await submit(g, "/orders", { body: "x" });
      const s = await settled(g, id);
      assertEquals([s.status, s.error], ["failed", "gave up after 3 attempts"]);
      assertEquals(worker.count("forward_failed"), 3);
    } finally {
      await worker.stop();
    }
  });
});

Deno.test("worker: SIGTERM lets the jobs in flight finish before it exits", async () => {
  await withJobs(answering(700), async ({ g, redis, up }) => {
    const worker = await spawnWorker([
      `--redis=${redis.url}`,
      `--stream=${STREAM_KEY}`,
      `--upstream=${up.url}`,
      "--block-ms=5000",
    ]);
    const id = await submit(g, "/orders", { body: "slow" });
    await waitFor("the upstream call", () => (up.received.length > 0 ? true : undefined));
    await worker.stop();
    assertEquals(worker.count("completed"), 1);
    const s = await status(g, id);
    assertEquals(s.status, "done");
    assertOk(worker.events.at(-1)?.event === "stopped");
  });
});
