/**
 * Jobs belong to the consumer that created them: another consumer cannot read
 * a job's result, and Idempotency-Keys are per consumer (API keys identify them).
 */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { parseEntry } from "../../lib/jobs/worker_protocol.ts";
import { type JobsEnv, STREAM_KEY, withJobs } from "./helpers.ts";

const KEYS = `auth:
  keys: { kind: api_key, header: X-API-Key }
consumers:
  - { id: team-a, api_keys: ["key-a"] }
  - { id: team-b, api_keys: ["key-b"] }
`;

function withOwnedJobs(fn: (env: JobsEnv) => Promise<void>): Promise<void> {
  return withJobs(startUpstream(), fn, { top: KEYS, orders: "    auth: [keys]\n" });
}

function submit(g: TestGateway, key: string | null, body: string, idem?: string) {
  const headers: Record<string, string> = {};
  if (key) headers["x-api-key"] = key;
  if (idem) headers["idempotency-key"] = idem;
  return fetch(`${g.url()}/orders`, { method: "POST", body, headers });
}

function status(g: TestGateway, id: string, key: string | null) {
  return fetch(`${g.url()}/jobs/${id}`, { headers: key ? { "x-api-key": key } : {} });
}

Deno.test({
  name: "job status: only the consumer that created a job can read it",
  fn: () =>
    withOwnedJobs(async ({ g, db }) => {
      await assertError(await submit(g, null, "x"), 401, "missing_credentials");
      const created = await submit(g, "key-a", "x");
      assertEquals(created.status, 202);
      const { job_id: id } = await created.json();

      const own = await status(g, id, "key-a");
      assertEquals(own.status, 200);
      assertEquals((await own.json()).status, "pending");
      // Another consumer sees the same answer as for a job that does not exist.
      await assertError(await status(g, id, "key-b"), 404, "job_not_found");
      await assertError(await status(g, id, null), 401, "missing_credentials");

      // The job carries who asked, not their credentials.
      const [raw] = await db.xrangeBuffer(STREAM_KEY, "-", "+");
      const entry = parseEntry(raw![0].toString(), raw![1])!;
      assertEquals(entry.consumer, "team-a");
      assertOk(!entry.headers.some(([n]) => n === "x-api-key"), "the API key was queued");
    }),
});

Deno.test({
  name: "Idempotency-Key: the same key from two consumers names two jobs",
  fn: () =>
    withOwnedJobs(async ({ g, db }) => {
      const a = await (await submit(g, "key-a", "from a", "k-1")).json();
      const b = await submit(g, "key-b", "from b", "k-1");
      assertEquals(b.status, 202);
      const bJob = (await b.json()).job_id;
      assertOk(a.job_id !== bJob);
      const again = await (await submit(g, "key-a", "from a", "k-1")).json();
      assertEquals(again.job_id, a.job_id);
      await assertError(await submit(g, "key-a", "changed", "k-1"), 422, "idempotency_conflict");
      assertEquals(await db.xlen(STREAM_KEY), 2);
    }),
});

Deno.test({
  name: "Idempotency-Key: anonymous callers' keys are per client address",
  fn: () =>
    withJobs(startUpstream(), async ({ g, db }) => {
      // Clients told apart by the trusted proxy's X-Forwarded-For (all tests come from 127.0.0.1).
      const from = (ip: string, body: string) =>
        fetch(`${g.url()}/orders`, {
          method: "POST",
          body,
          headers: { "idempotency-key": "report-2026-11-24", "x-forwarded-for": ip },
        });
      const a = await (await from("203.0.113.1", "report")).json();
      // Another caller guessing the key gets a job of its own, not a's id (and a's result).
      const b = await from("203.0.113.2", "report");
      assertEquals([b.status, b.headers.get("idempotent-replayed")], [202, null]);
      assertOk((await b.json()).job_id !== a.job_id);
      const again = await from("203.0.113.1", "report");
      assertEquals(again.headers.get("idempotent-replayed"), "true");
      assertEquals((await again.json()).job_id, a.job_id);
      assertEquals(await db.xlen(STREAM_KEY), 2);
    }, { top: "security: { trusted_proxies: [127.0.0.1] }\n" }),
});
