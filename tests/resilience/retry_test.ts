/** Retries, their budget and timeouts, through the gateway against failing upstreams. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { type Behaviour, type Flaky, startFlaky } from "./flaky.ts";
import { status, statuses, upstreamView } from "./support.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";

async function withGateway(yaml: string, fn: (g: TestGateway) => Promise<void>): Promise<void> {
  const g = await startGateway(baseConfig(yaml));
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

async function closeAll(...servers: Flaky[]): Promise<void> {
  await Promise.all(servers.map((s) => s.close()));
}

const twoTargets = (a: Flaky, b: Flaky, extra: string, route = "") => `
upstreams:
  api:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
${extra}
routes:
  - { name: api, match: { path: / }, upstream: api ${route} }
`;

const sickKinds: [string, Behaviour | "dead"][] = [
  ["503 answers", { status: 503 }],
  ["connection resets", "reset"],
  ["a dead process", "dead"],
];

for (const [kind, behaviour] of sickKinds) {
  Deno.test(`retry: with one target giving ${kind}, every GET lands on the healthy one`, async () => {
    const sick = startFlaky(() => (behaviour === "dead" ? { status: 200 } : behaviour));
    if (behaviour === "dead") await sick.stop();
    const healthy = startFlaky(() => ({ status: 200, body: "ok" }));
    try {
      await withGateway(
        twoTargets(
          sick,
          healthy,
          // Half the requests fail first: a budget of one retry per request lets all through.
          `    retries: { attempts: 1, on: [connect_error, reset, 503], backoff_ms: 1, budget_ratio: 1 }`,
        ),
        async (g) => {
          assertEquals(await statuses(`${g.url()}/item`, 20), Array(20).fill(200));
          assertEquals(healthy.hits(), 20);
          if (behaviour !== "dead") {
            assertEquals(sick.hits(), 10, "round robin sent half there first");
          }
        },
      );
    } finally {
      await closeAll(sick, healthy);
    }
  });
}

Deno.test("retry: a POST is not resent once the upstream saw it", async () => {
  const a = startFlaky(() => ({ status: 503 }));
  const b = startFlaky(() => "reset");
  try {
    await withGateway(
      twoTargets(a, b, `    retries: { attempts: 3, on: [reset, 503], backoff_ms: 1 }`),
      async (g) => {
        assertEquals(await status(`${g.url()}/`, { method: "POST", body: "order" }), 503);
        await assertError(
          await fetch(`${g.url()}/`, { method: "POST", body: "order" }),
          502,
          "bad_gateway",
        );
        assertEquals(a.hits() + b.hits(), 2, "one attempt each, no retry");
        assertEquals(await status(`${g.url()}/`), 503, "a GET is retried (and fails everywhere)");
        assertEquals(a.hits() + b.hits(), 6);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("retry: a POST the upstream never saw (connection refused) goes to another target", async () => {
  const dead = startFlaky();
  await dead.stop();
  const ok = startFlaky((req) => ({ status: 201, body: req.body }));
  try {
    await withGateway(
      twoTargets(dead, ok, `    retries: { attempts: 1, backoff_ms: 1 }`),
      async (g) => {
        for (let i = 0; i < 4; i++) {
          const res = await fetch(`${g.url()}/orders`, { method: "POST", body: `order-${i}` });
          assertEquals([res.status, await res.text()], [201, `order-${i}`]);
        }
        assertEquals(ok.hits(), 4);
      },
    );
  } finally {
    await closeAll(dead, ok);
  }
});

Deno.test("retry: a route that opts POST in resends the whole body to the next target", async () => {
  const a = startFlaky(() => ({ status: 503 }));
  const b = startFlaky((req) => ({ status: 200, body: `got ${req.body.length}` }));
  const body = "x".repeat(40_000);
  try {
    await withGateway(
      twoTargets(a, b, "", `, retries: { attempts: 1, methods: [POST], on: [503], backoff_ms: 1 }`),
      async (g) => {
        for (let i = 0; i < 2; i++) {
          const res = await fetch(`${g.url()}/`, { method: "POST", body });
          assertEquals([res.status, await res.text()], [200, "got 40000"]);
        }
        assertEquals([a.hits(), b.hits()], [1, 2]);
        assertEquals(a.received[0]!.body.length, 40_000);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("retry: the budget caps extra upstream load under a 100% failure rate", async () => {
  const a = startFlaky(() => ({ status: 503 }));
  const b = startFlaky(() => ({ status: 503 }));
  try {
    await withGateway(
      twoTargets(
        a,
        b,
        // An hour's window: 100 requests on a stalled machine could outlast the default 10 s.
        `    retries: { attempts: 3, backoff_ms: 0, budget_ratio: 0.2, budget_min_retries: 5, budget_window_s: 3600 }`,
      ),
      async (g) => {
        assertEquals(await statuses(`${g.url()}/`, 100), Array(100).fill(503));
        const sent = a.hits() + b.hits();
        console.log(`100 requests, 3 retries allowed each, 20% budget: ${sent} upstream requests`);
        assertOk(sent <= 120, `at most 100 + 20% retries, got ${sent} (400 without a budget)`);
        assertOk(sent >= 115, `the budget is used, got ${sent}`);
        const budget = (await upstreamView(g, "api")).retry_budget;
        assertEquals(budget.requests, 100);
        assertOk(budget.exhausted > 0);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("retry: never after the response started; a broken body reaches the client broken", async () => {
  const a = startFlaky(() => "truncate");
  const b = startFlaky(() => ({ status: 200, body: "whole" }));
  try {
    await withGateway(
      twoTargets(
        a,
        b,
        `    retries: { attempts: 2, on: [connect_error, reset, 502], backoff_ms: 1 }`,
      ),
      async (g) => {
        const res = await fetch(`${g.url()}/`);
        assertEquals(res.status, 200);
        let failed = false;
        try {
          await res.text();
        } catch {
          failed = true;
        }
        assertOk(failed, "the truncated body is not replaced by another attempt");
        assertEquals([a.hits(), b.hits()], [1, 0]);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("timeouts: first byte per attempt, the route's request_ms bounds all attempts", async () => {
  const a = startFlaky(() => "hang");
  const b = startFlaky(() => "hang");
  try {
    await withGateway(
      twoTargets(
        a,
        b,
        // Three attempts of 1 s fit in 3.5 s; five do not. A retry is made only with as much
        // left as the failed attempt took: the second needs a stall under 750 ms (with 100 and
        // 250 ms, one of 150 ms left a single attempt).
        `    timeout: { first_byte_ms: 1000 }
    retries: { attempts: 5, on: [timeout], backoff_ms: 1 }`,
        `, timeout: { request_ms: 3500 }`,
      ),
      async (g) => {
        const t0 = performance.now();
        await assertError(await fetch(`${g.url()}/`), 504, "upstream_timeout");
        const ms = performance.now() - t0;
        console.log(
          `hanging upstream, first_byte 1 s, request 3.5 s: 504 after ${ms.toFixed(0)} ms`,
        );
        const attempts = a.hits() + b.hits();
        assertOk(attempts >= 2 && attempts <= 3, `the deadline cut retries short: ${attempts}`);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("timeouts: a route's first_byte_ms overrides the upstream's", async () => {
  // Margins of about a second both ways: 50 ms against a 1 s answer, 10 s against it.
  const up = startFlaky(() => ({ status: 200, body: "slow", delayMs: 1000 }));
  try {
    await withGateway(
      `
upstreams:
  api: { targets: [ { url: "${up.url}" } ], timeout: { first_byte_ms: 10000 } }
routes:
  - { name: fast, match: { path: /fast }, upstream: api, timeout: { first_byte_ms: 50 } }
  - { name: patient, match: { path: / }, upstream: api }
`,
      async (g) => {
        await assertError(await fetch(`${g.url()}/fast`), 504, "upstream_timeout");
        const res = await fetch(`${g.url()}/other`);
        assertEquals([res.status, await res.text()], [200, "slow"]);
      },
    );
  } finally {
    await up.close();
  }
});

Deno.test("timeouts: a retry is not started when less of request_ms is left than the failed attempt took", async () => {
  // a's 503 takes 1800 of the 3000 ms; a retry would have about 1200 ms, less than that. (With
  // 600 of 1000 ms, a stall of 400 ms let the deadline end the request before a's answer.)
  const a = startFlaky(() => ({ status: 503, body: "a is busy", delayMs: 1800 }));
  const b = startFlaky(() => "hang");
  try {
    await withGateway(
      twoTargets(
        a,
        b,
        `    retries: { attempts: 2, on: [503], backoff_ms: 1 }`,
        `, timeout: { request_ms: 3000 }`,
      ),
      async (g) => {
        const res = await fetch(`${g.url()}/`);
        assertEquals([res.status, await res.text()], [503, "a is busy"], "a's answer, not a 504");
        assertEquals([a.hits(), b.hits()], [1, 0], "no attempt that could not finish");
        const budget = (await upstreamView(g, "api")).retry_budget;
        assertEquals([budget.retries, budget.too_late, budget.exhausted], [0, 1, 0]);

        // A fast failure leaves the time: the retry is made (and b now answers).
        a.handler = () => ({ status: 503 });
        b.handler = () => ({ status: 200, body: "b" });
        const second = await fetch(`${g.url()}/`); // b first (round robin)
        assertEquals([second.status, await second.text()], [200, "b"]);
        const third = await fetch(`${g.url()}/`); // a's fast 503, retried on b
        assertEquals([third.status, await third.text()], [200, "b"]);
        assertEquals([a.hits(), b.hits()], [2, 2]);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("timeouts: a retry needs a tenth of request_ms left, however fast the failure", async () => {
  // A slow upload of a PUT that may be resent: it is read whole before the first attempt, within
  // request_ms. a then fails at once with about 800 of the 10000 ms left, under the 1000 ms floor
  // (margins of 800 ms either way, for a timer that fires late on a loaded machine).
  const a = startFlaky(() => ({ status: 503, body: "a failed" }));
  const b = startFlaky(() => "hang");
  try {
    await withGateway(
      twoTargets(
        a,
        b,
        `    retries: { attempts: 1, on: [503], backoff_ms: 1 }`,
        `, timeout: { request_ms: 10000 }`,
      ),
      async (g) => {
        const u = new URL(g.url());
        const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
        const enc = new TextEncoder();
        await conn.write(enc.encode(
          `PUT /item HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nab`,
        ));
        await new Promise((r) => setTimeout(r, 9_200));
        await conn.write(enc.encode("cd"));
        const res = parseResponse((await readUntilClose(conn, 10_000)).text);
        assertEquals([res.status, res.body], [503, "a failed"], "a's answer, not a 504");
        assertEquals([a.hits(), b.hits()], [1, 0]);
        assertEquals(a.received[0]!.body, "abcd");
        assertEquals((await upstreamView(g, "api")).retry_budget.too_late, 1);
      },
    );
  } finally {
    await closeAll(a, b);
  }
});
