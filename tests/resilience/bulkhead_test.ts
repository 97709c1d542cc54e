/** Bulkheads: a hanging upstream takes a bounded share and other routes do not notice. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startFlaky } from "./flaky.ts";
import { upstreamView } from "./support.ts";

async function timed(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  assertEquals(res.status, 200);
  await res.body?.cancel();
  return performance.now() - t0;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

Deno.test("bulkhead: a hanging upstream fills its slots and queue; a healthy route's latency holds", async () => {
  const stuck = startFlaky(() => "hang");
  const fine = startFlaky(() => ({ status: 200, body: "fine" }));
  const g = await startGateway(baseConfig(`
upstreams:
  stuck:
    targets: [ { url: "${stuck.url}" } ]
    timeout: { first_byte_ms: 10000 }
    max_concurrent: 4
    queue: 2
    queue_timeout_ms: 400
  fine: { targets: [ { url: "${fine.url}" } ] }
routes:
  - { name: stuck, match: { path: /stuck }, upstream: stuck }
  - { name: fine, match: { path: /fine }, upstream: fine }
`));
  try {
    const before: number[] = [];
    for (let i = 0; i < 50; i++) before.push(await timed(`${g.url()}/fine`));

    const flood = Array.from({ length: 30 }, async () => {
      const t0 = performance.now();
      const res = await fetch(`${g.url()}/stuck`);
      const body = await res.text();
      return {
        status: res.status,
        body,
        ms: performance.now() - t0,
        retryAfter: res.headers.get("retry-after"),
      };
    });
    // Wait until the slots are taken and the queue is full.
    for (let i = 0; i < 100 && stuck.hits() < 4; i++) await new Promise((r) => setTimeout(r, 10));
    const view = await upstreamView(g, "stuck");
    assertEquals([view.bulkhead.active, view.bulkhead.max_concurrent], [4, 4]);

    const during: number[] = [];
    for (let i = 0; i < 50; i++) during.push(await timed(`${g.url()}/fine`));

    // The two queued requests give up after queue_timeout_ms; then the upstream dies.
    for (let i = 0; i < 200; i++) {
      const b = (await upstreamView(g, "stuck")).bulkhead;
      if (b.queued === 0 && b.rejected === 26) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await stuck.stop();
    const results = await Promise.all(flood);
    const refusedAtOnce = results.filter((r) => r.status === 503 && r.ms < 300);
    const queuedOut = results.filter((r) => r.status === 503 && r.ms >= 300);
    const sent = results.filter((r) => r.status !== 503);
    assertEquals(
      [refusedAtOnce.length, queuedOut.length, sent.length],
      [24, 2, 4],
      JSON.stringify(results.map((r) => [r.status, Math.round(r.ms)])),
    );
    for (const r of [...refusedAtOnce, ...queuedOut]) {
      assertEquals(JSON.parse(r.body).error.code, "upstream_overloaded");
      assertEquals(r.retryAfter, "1");
    }
    assertEquals(stuck.hits(), 4, "the upstream never saw more than max_concurrent");
    const p = (xs: number[]) =>
      `p50 ${percentile(xs, 0.5).toFixed(2)} ms, p95 ${percentile(xs, 0.95).toFixed(2)} ms`;
    console.log(`healthy route before: ${p(before)}; while the other upstream hangs: ${p(during)}`);
    // Not a speed test: a blocked route would wait out the 10 s hang; loaded CI machines are slow.
    assertOk(percentile(during, 0.5) < 2000, `healthy route slowed: ${p(during)}`);
  } finally {
    await g.close();
    await stuck.close();
    await fine.close();
  }
});

Deno.test("bulkhead: a queued request gets the next free slot", async () => {
  const slow = startFlaky(() => ({ status: 200, body: "done", delayMs: 150 }));
  const g = await startGateway(baseConfig(`
upstreams:
  slow: { targets: [ { url: "${slow.url}" } ], max_concurrent: 2, queue: 2, queue_timeout_ms: 2000 }
routes:
  - { name: slow, match: { path: / }, upstream: slow }
`));
  try {
    const first = Array.from({ length: 4 }, () => fetch(`${g.url()}/`));
    for (let i = 0; i < 100 && slow.hits() < 2; i++) await new Promise((r) => setTimeout(r, 5));
    await assertError(await fetch(`${g.url()}/`), 503, "upstream_overloaded");
    const got = await Promise.all(first.map(async (p) => {
      const res = await p;
      await res.body?.cancel();
      return res.status;
    }));
    assertEquals(got, [200, 200, 200, 200]);
    assertEquals(slow.hits(), 4);
  } finally {
    await g.close();
    await slow.close();
  }
});
