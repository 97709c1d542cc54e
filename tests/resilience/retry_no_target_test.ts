/**
 * A retry that finds no target (circuits opened, targets down) through a real
 * listener: the client gets the last attempt's real outcome, never the
 * gateway's `circuit_open`, which stays for requests no attempt was made for.
 */
import { assertEquals, assertError } from "../helpers/assert.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { type Flaky, startFlaky } from "./flaky.ts";
import { until, upstreamView } from "./support.ts";
import { parsePromText, samplesOf } from "../observe/prom_text.ts";

const ACCESS_LOG = "observe: { access_log: { path: access.log } }\n";

/** Upstream `api` over `targets` with `extra` lines, one route to it, and an access log. */
function config(targets: Flaky[], extra: string): string {
  return baseConfig(`${ACCESS_LOG}
upstreams:
  api:
    targets: [ ${targets.map((t) => `{ url: "${t.url}" }`).join(", ")} ]
${extra}
routes:
  - { name: api, match: { path: / }, upstream: api }
`);
}

async function withGateway(yaml: string, fn: (g: TestGateway) => Promise<void>): Promise<void> {
  // A manual clock: the circuit stays open however long the machine stalls.
  const g = await startGateway(yaml, { clock: new ManualClock(1_000_000) });
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

/** The access log's record of each path, keyed by path. */
async function logByPath(g: TestGateway): Promise<Map<string, Record<string, unknown>>> {
  await g.gw.deps.accessLogs.flushAll();
  const text = await Deno.readTextFile(`${g.dir}/access.log`);
  const records = text.trimEnd().split("\n").map((l) => JSON.parse(l));
  return new Map(records.map((r) => [r.path as string, r]));
}

/** The fields of a log record that say what the request's outcome was. */
function outcome(r: Record<string, unknown> | undefined): unknown[] {
  return [r?.status, r?.error_code, r?.attempts, r?.upstream_target];
}

/** `gateway_errors_total` of the route for `code`; 0 when the series does not exist. */
async function errorCount(g: TestGateway, code: string): Promise<number> {
  const f = parsePromText(await (await fetch(`${g.admin}/metrics`)).text());
  const s = samplesOf(f, "gateway_errors_total").find((s) =>
    s.labels.route === "api" && s.labels.code === code
  );
  return s?.value ?? 0;
}

// A backoff of 1 to 2 s: a second request fails and opens the circuit meanwhile.
const SLOW_RETRY =
  `    retries: { attempts: 1, on: [reset, 503], backoff_ms: 2000, max_backoff_ms: 2000 }`;

Deno.test("retry: the circuit opened during the backoff; the client gets the upstream's 503 body", async () => {
  const up = startFlaky(() => ({ status: 503, body: "upstream busy" }));
  try {
    await withGateway(
      config(
        [up],
        `${SLOW_RETRY}
    circuit_breaker: { consecutive_failures: 2, min_requests: 100, open_s: 30 }`,
      ),
      async (g) => {
        const first = fetch(`${g.url()}/first`);
        await until(() => Promise.resolve(up.hits() === 1));
        // Its failure is the second in a row: it opens the circuit, and has no target to retry on.
        const second = await fetch(`${g.url()}/second`);
        assertEquals([second.status, await second.text()], [503, "upstream busy"]);
        assertEquals((await upstreamView(g, "api")).targets[0].circuit, "open");

        const res = await first;
        assertEquals(
          [res.status, res.headers.get("content-type"), await res.text()],
          [503, "text/plain", "upstream busy"],
          "the upstream's answer, not the gateway's circuit_open",
        );
        assertEquals(up.hits(), 2, "the retry was not made");
        await assertError(await fetch(`${g.url()}/third`), 503, "circuit_open");

        const log = await logByPath(g);
        assertEquals(outcome(log.get("/first")), [503, null, 1, up.url]);
        assertEquals(outcome(log.get("/second")), [503, null, 1, up.url]);
        assertEquals(outcome(log.get("/third")), [503, "circuit_open", 0, null]);
        assertEquals(await errorCount(g, "circuit_open"), 1, "only the request never sent");
        assertEquals(
          (await upstreamView(g, "api")).retry_budget.retries,
          0,
          "a retry that was not made is not counted",
        );
      },
    );
  } finally {
    await up.close();
  }
});

Deno.test("retry: the circuit opened during the backoff after a reset; the client gets that attempt's 502", async () => {
  const up = startFlaky(() => "reset");
  try {
    await withGateway(
      config(
        [up],
        `${SLOW_RETRY}
    circuit_breaker: { consecutive_failures: 2, min_requests: 100, open_s: 30 }`,
      ),
      async (g) => {
        const first = fetch(`${g.url()}/first`);
        await until(() => Promise.resolve(up.hits() === 1));
        await assertError(await fetch(`${g.url()}/second`), 502, "bad_gateway");
        assertEquals((await upstreamView(g, "api")).targets[0].circuit, "open");
        await assertError(await first, 502, "bad_gateway");
        assertEquals(up.hits(), 2);

        const log = await logByPath(g);
        assertEquals(outcome(log.get("/first")), [502, "bad_gateway", 1, up.url]);
        assertEquals(log.get("/first")!.upstream_latency_ms, null, "no response head");
        assertEquals(await errorCount(g, "circuit_open"), 0);
        assertEquals(await errorCount(g, "bad_gateway"), 2);
      },
    );
  } finally {
    await up.close();
  }
});

Deno.test("retry: the retry's other target went down during the backoff; the first target's answer stands", async () => {
  const a = startFlaky(() => ({ status: 503, body: "a busy" }));
  const b = startFlaky(() => ({ status: 503, body: "b busy" }));
  try {
    await withGateway(
      config(
        [a, b],
        `${SLOW_RETRY}
    circuit_breaker: { consecutive_failures: 1, open_s: 30 }`,
      ),
      async (g) => {
        // a's 503 opens a's circuit; the retry is to go to b after the backoff.
        const first = fetch(`${g.url()}/first`);
        await until(() => Promise.resolve(a.hits() === 1));
        // Round robin sends this one to b, whose 503 opens b's circuit too.
        const second = await fetch(`${g.url()}/second`);
        assertEquals([second.status, await second.text()], [503, "b busy"]);

        const res = await first;
        assertEquals([res.status, await res.text()], [503, "a busy"]);
        assertEquals([a.hits(), b.hits()], [1, 1]);
        const log = await logByPath(g);
        assertEquals(outcome(log.get("/first")), [503, null, 1, a.url]);
        assertEquals(await errorCount(g, "circuit_open"), 0);
      },
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("retry: a failure that opens the only circuit at once is answered as it came", async () => {
  const up = startFlaky(() => ({ status: 503, body: "upstream busy" }));
  try {
    await withGateway(
      config(
        [up],
        `    retries: { attempts: 2, on: [503], backoff_ms: 1 }
    circuit_breaker: { consecutive_failures: 1, open_s: 30 }`,
      ),
      async (g) => {
        const res = await fetch(`${g.url()}/first`);
        assertEquals([res.status, await res.text()], [503, "upstream busy"]);
        assertEquals(up.hits(), 1);
        await assertError(await fetch(`${g.url()}/second`), 503, "circuit_open");

        const log = await logByPath(g);
        assertEquals(outcome(log.get("/first")), [503, null, 1, up.url]);
        assertEquals(outcome(log.get("/second")), [503, "circuit_open", 0, null]);
        assertEquals((await upstreamView(g, "api")).retry_budget.retries, 0);
      },
    );
  } finally {
    await up.close();
  }
});

Deno.test("retry: a last attempt without a response head logs no upstream latency, whatever came before", async () => {
  const a = startFlaky(() => ({ status: 503, body: "a busy" }));
  const b = startFlaky(() => "reset");
  try {
    await withGateway(
      config([a, b], `    retries: { attempts: 1, on: [reset, 503], backoff_ms: 1 }`),
      async (g) => {
        await assertError(await fetch(`${g.url()}/first`), 502, "bad_gateway");
        assertEquals([a.hits(), b.hits()], [1, 1]);
        const log = (await logByPath(g)).get("/first");
        assertEquals(outcome(log), [502, "bad_gateway", 2, b.url]);
        assertEquals(log!.upstream_latency_ms, null, "not a's, whose answer was not the client's");
      },
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
