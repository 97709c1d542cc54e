/**
 * Async routes through a real listener and a real redis-server: 202 + Location,
 * what the stream entry holds, job status, Idempotency-Key, limits, outages.
 */
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawRequest } from "../helpers/raw.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { loadConfigFile } from "../../lib/config/load.ts";
import {
  beginJob,
  completeJob,
  failJob,
  parseEntry,
  type WorkerIdentity,
} from "../../lib/jobs/worker_protocol.ts";
import { PREFIX, readAsConsumer, STREAM_KEY, withJobs } from "./helpers.ts";

function post(g: TestGateway, path: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${g.url()}${path}`, { method: "POST", body, headers });
}

async function submit(
  g: TestGateway,
  body: string,
  headers: Record<string, string> = {},
  path = "/orders",
): Promise<{ res: Response; id: string; json: Record<string, unknown> }> {
  const res = await post(g, path, body, headers);
  const json = await res.json();
  assertEquals(res.status, 202, JSON.stringify(json));
  return { res, id: json.job_id, json };
}

/** Reads every entry of the test stream as a parsed job. */
async function entries(db: Redis) {
  const raw = await db.xrangeBuffer(STREAM_KEY, "-", "+");
  return raw.map(([id, fields]) => parseEntry(id.toString(), fields)!);
}

const WORKER: WorkerIdentity = { stream: STREAM_KEY, group: "test", name: "in-test" };

Deno.test("async route: 202 with Location and job id; the request is queued, not proxied", async () => {
  await withJobs(startUpstream(), async ({ g, db, up }) => {
    const res = await post(g, "/orders/42?express=1", '{"item":"book"}', {
      "content-type": "application/json",
      "x-client-note": "gift",
      "connection": "keep-alive, x-hop",
      "x-hop": "dropped",
    });
    const body = await res.json();
    assertEquals(res.status, 202);
    assertMatch(body.job_id, /^[0-9a-f-]{36}$/);
    assertEquals(res.headers.get("location"), `/jobs/${body.job_id}`);
    assertEquals(body, {
      job_id: body.job_id,
      status: "pending",
      status_url: `/jobs/${body.job_id}`,
    });
    assertEquals(up.received.length, 0);

    const [entry, ...more] = await entries(db);
    assertEquals(more.length, 0);
    assertOk(entry);
    assertEquals(entry.job, body.job_id);
    assertEquals(entry.route, "orders");
    assertEquals(entry.upstream, "orders");
    assertEquals(entry.method, "POST");
    assertEquals(entry.path, "/orders/42?express=1");
    assertEquals(new TextDecoder().decode(entry.body), '{"item":"book"}');
    assertEquals(entry.resultKey, `${PREFIX}job:${body.job_id}`);
    assertEquals(entry.resultTtlMs, 600_000);
    const headers = new Map(entry.headers);
    assertEquals(headers.get("content-type"), "application/json");
    assertEquals(headers.get("x-client-note"), "gift");
    assertEquals(headers.get("x-forwarded-for"), "127.0.0.1");
    assertEquals(headers.get("via"), "1.1 gateway");
    assertEquals(headers.get("x-request-id"), res.headers.get("x-request-id"));
    for (const gone of ["host", "connection", "x-hop", "content-length"]) {
      assertEquals(headers.has(gone), false, `${gone} must not be queued`);
    }

    const ttl = await db.pttl(entry.resultKey);
    assertOk(ttl > 590_000 && ttl <= 600_000, `job hash TTL ${ttl}`);
    const status = await fetch(`${g.url()}/jobs/${body.job_id}`);
    const s = await status.json();
    assertEquals(status.status, 200);
    assertEquals(status.headers.get("retry-after"), "1");
    assertEquals(status.headers.get("cache-control"), "no-store");
    assertEquals(s.status, "pending");
    assertEquals(s.attempts, 0);
    assertMatch(s.created_at, /^\d{4}-\d\d-\d\dT/);
  });
});

Deno.test("job status: running, then done with the stored result; binary bodies as base64", async () => {
  await withJobs(startUpstream(), async ({ g, db }) => {
    const text = await submit(g, "a");
    const binary = await submit(g, "b");
    const [e1, e2] = await readAsConsumer(db, WORKER);
    assertEquals(await beginJob(db, WORKER, e1!, Date.now(), 3), "run");
    const running = await (await fetch(`${g.url()}/jobs/${text.id}`)).json();
    assertEquals([running.status, running.attempts], ["running", 1]);
    assertOk(running.started_at);

    assertEquals(
      await completeJob(db, WORKER, e1!, Date.now(), {
        status: 201,
        headers: { "content-type": "text/plain", "x-answer": "42" },
        body: new TextEncoder().encode("créé"),
      }),
      true,
    );
    assertEquals(await beginJob(db, WORKER, e2!, Date.now(), 3), "run");
    await completeJob(db, WORKER, e2!, Date.now(), {
      status: 200,
      headers: {},
      body: new Uint8Array([0xff, 0x00, 0x80]),
    });

    const done = await fetch(`${g.url()}/jobs/${text.id}`);
    assertEquals(done.headers.get("retry-after"), null);
    const d = await done.json();
    assertEquals(d.status, "done");
    assertOk(d.finished_at);
    assertEquals(d.result, {
      status: 201,
      headers: { "content-type": "text/plain", "x-answer": "42" },
      body: "créé",
    });
    const b = await (await fetch(`${g.url()}/jobs/${binary.id}`)).json();
    assertEquals(b.result.body_base64, Buffer.from([0xff, 0x00, 0x80]).toString("base64"));
    assertEquals(b.result.body, undefined);

    // A result is written once: a second completion (a reclaimed copy) changes nothing.
    assertEquals(
      await completeJob(db, WORKER, e1!, Date.now(), {
        status: 500,
        headers: {},
        body: new Uint8Array(),
      }),
      false,
    );
    assertEquals(await failJob(db, WORKER, e1!, Date.now(), "late"), false);
    assertEquals((await (await fetch(`${g.url()}/jobs/${text.id}`)).json()).result.status, 201);
    // Completion acknowledged both entries.
    assertEquals((await db.xpending(STREAM_KEY, WORKER.group))[0], 0);
  });
});

Deno.test("job status: unknown, malformed and expired ids are 404 job_not_found", async () => {
  await withJobs(startUpstream(), async ({ g, db }) => {
    await assertError(
      await fetch(`${g.url()}/jobs/00000000-0000-4000-8000-000000000000`),
      404,
      "job_not_found",
    );
    await assertError(await fetch(`${g.url()}/jobs/not-a-job`), 404, "job_not_found");
    const { id } = await submit(g, "x");
    await db.del(`${PREFIX}job:${id}`);
    await assertError(await fetch(`${g.url()}/jobs/${id}`), 404, "job_not_found");
    // Only GET (and HEAD) exist at /jobs/{id}.
    const del = await fetch(`${g.url()}/jobs/${id}`, { method: "DELETE" });
    await assertError(del, 405, "method_not_allowed");
  });
});

Deno.test("result_ttl: a job started before it expires keeps its result, however late it finishes", async () => {
  // The hash's TTL ran from creation until completion: a job started near the end of
  // result_ttl expired while its upstream call ran, the result was dropped (the completion
  // found no job) and polling said 404, though the upstream had done the work.
  await withJobs(startUpstream(), async ({ g, db }) => {
    const { id } = await submit(g, "late", {}, "/brief");
    const [entry] = await readAsConsumer(db, WORKER);
    await new Promise((r) => setTimeout(r, 1200));
    assertEquals(await beginJob(db, WORKER, entry!, Date.now(), 3), "run");
    const ttl = await db.pttl(entry!.resultKey);
    assertOk(ttl > 1500, `a started job lives result_ttl again, not ${ttl} ms`);
    await new Promise((r) => setTimeout(r, 1200));
    const result = { status: 200, headers: {}, body: new TextEncoder().encode("worth it") };
    assertEquals(await completeJob(db, WORKER, entry!, Date.now(), result), true);
    const done = await (await fetch(`${g.url()}/jobs/${id}`)).json();
    assertEquals([done.status, done.result.body], ["done", "worth it"]);
  }, {
    routes: `  - { name: brief, match: { path: /brief }, upstream: orders,
      async: { stream: orders, result_ttl: 2s } }
`,
  });
});

Deno.test("Idempotency-Key: a retry returns the same job, another body is 422, no duplicate entry", async () => {
  await withJobs(startUpstream(), async ({ g, db }) => {
    const key = { "idempotency-key": "order-7f3a" };
    const first = await submit(g, '{"n":1}', key);
    assertEquals(first.res.headers.get("idempotent-replayed"), null);
    const retry = await submit(g, '{"n":1}', key);
    assertEquals(retry.id, first.id);
    assertEquals(retry.res.headers.get("location"), `/jobs/${first.id}`);
    assertEquals(retry.res.headers.get("idempotent-replayed"), "true");
    assertEquals(retry.json.status, "pending");

    await assertError(await post(g, "/orders", '{"n":2}', key), 422, "idempotency_conflict");
    await assertError(
      await post(g, "/orders/other", '{"n":1}', key),
      422,
      "idempotency_conflict",
    );
    const other = await submit(g, '{"n":1}', { "idempotency-key": "order-7f3b" });
    assertOk(other.id !== first.id);
    const plain = await submit(g, '{"n":1}');
    assertOk(plain.id !== first.id);

    // Concurrent retries of one key still make one job.
    const racing = await Promise.all(
      Array.from({ length: 20 }, () => submit(g, "race", { "idempotency-key": "race-1" })),
    );
    assertEquals(new Set(racing.map((r) => r.id)).size, 1);

    assertEquals(await db.xlen(STREAM_KEY), 4);
    const queued = await entries(db);
    assertEquals(queued.map((e) => e.job), [first.id, other.id, plain.id, racing[0]!.id]);
    // The key is the gateway's: workers send their own (the job id) upstream.
    assertEquals(queued[0]!.headers.some(([n]) => n === "idempotency-key"), false);
    const ttl = await db.pttl(`${PREFIX}job:${first.id}`);
    assertOk(ttl > 0);

    await assertError(
      await post(g, "/orders", "x", { "idempotency-key": "bad\tkey" }),
      400,
      "bad_request",
    );
    await assertError(
      await post(g, "/orders", "x", { "idempotency-key": "k".repeat(256) }),
      400,
      "bad_request",
    );
  });
});

Deno.test("async route: a body over async.max_body_bytes is 413, declared or streamed", async () => {
  await withJobs(
    startUpstream(),
    async ({ g, db }) => {
      const ok = await post(g, "/small", "0123456789abcdef");
      assertEquals(ok.status, 202);
      await ok.body?.cancel();
      await assertError(await post(g, "/small", "0123456789abcdefX"), 413, "payload_too_large");
      const chunked = await rawRequest(g.url(), [
        "POST /small HTTP/1.1",
        "Host: test",
        "Transfer-Encoding: chunked",
        "Connection: close",
      ], "10\r\n0123456789abcdef\r\n2\r\nXY\r\n0\r\n\r\n");
      assertEquals(chunked.status, 413);
      assertEquals(JSON.parse(chunked.body).error.code, "payload_too_large");
      assertEquals(await db.xlen(STREAM_KEY), 1);
    },
    {
      routes: `  - { name: small, match: { path: /small }, upstream: orders,
      async: { stream: orders, max_body_bytes: 16 } }
`,
    },
  );
});

Deno.test("async route: Redis down is 503 store_unavailable, and jobs resume when it is back", async () => {
  await withJobs(startUpstream(), async ({ g, redis, db }) => {
    const { id } = await submit(g, "before");
    await redis.stop();
    await assertError(await post(g, "/orders", "during"), 503, "store_unavailable");
    await assertError(await fetch(`${g.url()}/jobs/${id}`), 503, "store_unavailable");
    await redis.start();
    let status = 0;
    for (let i = 0; i < 100 && status !== 202; i++) {
      const res = await post(g, "/orders", "after");
      status = res.status;
      await res.body?.cancel();
      if (status !== 202) await new Promise((r) => setTimeout(r, 50));
    }
    assertEquals(status, 202);
    // A fresh redis-server (no persistence): the earlier job is gone, the gateway is fine.
    await assertError(await fetch(`${g.url()}/jobs/${id}`), 404, "job_not_found");
    assertEquals(await db.xlen(STREAM_KEY), 1);
  });
});

Deno.test("async route: /jobs/{id} is reserved, listed in /routes, and kept across reloads", async () => {
  await withJobs(startUpstream(), async ({ g }) => {
    const { id } = await submit(g, "x");
    // A catch-all user route does not shadow job status.
    const routes = await (await fetch(`${g.admin}/routes`)).json();
    const names = routes.routes.map((r: { name: string }) => r.name);
    assertEquals(names, ["orders", "all", "@jobs"]);
    assertEquals(routes.routes[0].policies.at(-1), "job_submit");
    assertEquals(routes.routes[2].policies.at(-1), "job_status");
    assertEquals((await (await fetch(`${g.url()}/jobs/${id}`)).json()).status, "pending");

    await Deno.writeTextFile(g.file, (await Deno.readTextFile(g.file)).replace("10m", "20m"));
    assertEquals((await g.gw.reload()).ok, true);
    assertEquals((await (await fetch(`${g.url()}/jobs/${id}`)).json()).status, "pending");
    await submit(g, "after reload");
  }, { routes: `  - { name: all, match: { path: / }, upstream: orders }\n` });
});

Deno.test("without async routes, /jobs/{id} is an ordinary path", async () => {
  const up = startUpstream();
  const g = await startGateway(baseConfig(`upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: api, match: { path: /api }, upstream: a }
`));
  try {
    await assertError(
      await fetch(`${g.url()}/jobs/00000000-0000-4000-8000-000000000000`),
      404,
      "route_not_found",
    );
  } finally {
    await g.close();
    await up.close();
  }
});

async function configErrors(yaml: string): Promise<string[]> {
  try {
    const g = await startGateway(yaml);
    await g.close();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map(formatIssue);
    throw e;
  }
  throw new Error("expected the config to be refused");
}

Deno.test("async config errors name the line and key", async () => {
  const upstream = `upstreams:\n  a: { targets: [ { url: "http://127.0.0.1:9" } ] }\n`;
  const memory = await configErrors(baseConfig(`${upstream}routes:
  - name: r
    match: { path: /r }
    upstream: a
    async: { stream: s }
`));
  assertEquals(memory.length, 1);
  assertMatch(
    memory[0]!,
    /gateway\.yaml:11:\d+: routes\[0\]\.async: async routes need store\.kind: redis/,
  );

  const redisStore = `store: { kind: redis, redis: { url: "redis://127.0.0.1:9" } }\n`;
  const ttl = await configErrors(baseConfig(`${redisStore}${upstream}routes:
  - name: r
    match: { path: /r }
    upstream: a
    async: { stream: s, result_ttl: soon }
`));
  assertEquals(ttl.length, 1);
  assertMatch(ttl[0]!, /:12:\d+: routes\[0\]\.async\.result_ttl: expected a duration/);

  const unknown = await configErrors(baseConfig(`${redisStore}${upstream}routes:
  - name: r
    match: { path: /r }
    upstream: a
    async: { stream: s, max_len: 5 }
`));
  assertMatch(unknown[0]!, /routes\[0\]\.async/);
  assertMatch(unknown[0]!, /max_len/);

  const mixed = await configErrors(baseConfig(`${redisStore}${upstream}auth:
  keys: { kind: api_key }
routes:
  - { name: open, match: { path: /open }, upstream: a, async: { stream: s } }
  - { name: closed, match: { path: /closed }, upstream: a, auth: [keys], async: { stream: s } }
`));
  assertEquals(mixed.length, 1);
  assertMatch(mixed[0]!, /routes\[0\]\.async: async routes must all use auth or none/);
});

Deno.test("config/examples/async_jobs.yaml is a valid configuration", async () => {
  const file = new URL("../../config/examples/async_jobs.yaml", import.meta.url).pathname;
  const { config } = await loadConfigFile(
    file,
    (name) => (name === "ANALYTICS_KEY" ? "k" : undefined),
  );
  assertEquals(config.routes[0]!.async?.result_ttl, 3_600_000);
});
