/** Circuit breakers through a real listener against a real failing upstream. */
import { assertEquals, assertError, assertOk, within } from "../helpers/assert.ts";
import { parsePromText, sampleValue } from "../observe/prom_text.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { startFlaky } from "./flaky.ts";
import { rawRequest } from "../helpers/raw.ts";
import { oneUpstream, status, statuses, upstreamView } from "./support.ts";

Deno.test("breaker: opens after the configured failures, then answers 503 at once without the upstream", async () => {
  const up = startFlaky(() => ({ status: 500, body: "boom" }));
  const clock = new ManualClock(1_000_000);
  const g = await startGateway(
    baseConfig(oneUpstream(
      up.url,
      "    circuit_breaker: { failure_ratio: 0.5, min_requests: 4, window_s: 10, open_s: 30 }",
    )),
    { clock },
  );
  try {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${g.url()}/x`);
      assertEquals(res.status, 500, "the upstream's own answer passes through");
      await res.body?.cancel();
    }
    assertEquals(up.hits(), 4);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const res = await fetch(`${g.url()}/x`);
      times.push(performance.now() - t0);
      const body = await assertError(res, 503, "circuit_open");
      assertEquals(res.headers.get("retry-after"), "30");
      assertOk(body.error.request_id);
    }
    assertEquals(up.hits(), 4, "no request reached the upstream while open");
    times.sort((a, b) => a - b);
    console.log(
      `breaker open: 503 in p50 ${times[10]!.toFixed(2)} ms, max ${times[19]!.toFixed(2)} ms`,
    );
    const t = (await upstreamView(g, "api")).targets[0];
    assertEquals([t.circuit, t.available, t.breaker.trips], ["open", false, 1]);
    clock.advance(10_000);
    const res = await fetch(`${g.url()}/x`);
    assertEquals(res.headers.get("retry-after"), "20", "Retry-After counts down");
    await res.body?.cancel();
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("breaker: half-open lets probes through; success closes, failure reopens", async () => {
  let failing = true;
  const up = startFlaky(() => failing ? { status: 503 } : { status: 200, body: "fine" });
  const clock = new ManualClock(1_000_000);
  const g = await startGateway(
    baseConfig(oneUpstream(
      up.url,
      "    circuit_breaker: { consecutive_failures: 3, open_s: 5, half_open_requests: 2 }",
    )),
    { clock },
  );
  const get = () => status(`${g.url()}/`);
  try {
    assertEquals([await get(), await get(), await get()], [503, 503, 503]);
    assertEquals(await get(), 503);
    assertEquals(up.hits(), 3, "open after 3 failures in a row");

    clock.advance(5_000);
    assertEquals(await get(), 503, "a failed probe...");
    assertEquals(up.hits(), 4);
    assertEquals(await get(), 503);
    assertEquals(up.hits(), 4, "...reopens the circuit for another period");

    failing = false;
    clock.advance(5_000);
    assertEquals(await get(), 200, "probe 1 passes");
    assertEquals((await upstreamView(g, "api")).targets[0].circuit, "half_open");
    assertEquals(await get(), 200, "probe 2 passes and closes it");
    assertEquals((await upstreamView(g, "api")).targets[0].circuit, "closed");
    for (let i = 0; i < 5; i++) assertEquals(await get(), 200);
    assertEquals(up.hits(), 11);
  } finally {
    await g.close();
    await up.close();
  }
});

/**
 * A gateway whose only target failed once, opening its circuit (one failure, one probe, 1 s),
 * and whose clock then moved to half-open. From now on the upstream holds its answers (200)
 * until `release()`: the probe stays in flight for as long as the test needs.
 */
async function halfOpen(route = "") {
  let failing = true;
  const held = Promise.withResolvers<void>();
  const up = startFlaky(() => (failing ? { status: 502 } : { status: 200, until: held.promise }));
  const clock = new ManualClock(0);
  const g = await startGateway(
    baseConfig(oneUpstream(
      up.url,
      "    circuit_breaker: { consecutive_failures: 1, open_s: 1, half_open_requests: 1 }",
      route,
    )),
    { clock },
  );
  assertEquals(await status(`${g.url()}/`), 502);
  failing = false;
  clock.advance(1_000);
  return {
    g,
    up,
    release: () => held.resolve(),
    async close() {
      held.resolve();
      await g.close();
      await up.close();
    },
  };
}

/** Polls (10 ms, up to 10 s) until `cond` holds; false if it never did. */
async function eventually(cond: () => boolean | Promise<boolean>): Promise<boolean> {
  for (const end = performance.now() + 10_000; performance.now() < end;) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

Deno.test("breaker: concurrent requests in half-open get exactly the configured probes", async () => {
  const { g, up, release, close } = await halfOpen();
  try {
    const answered: number[] = [];
    const all = Array.from(
      { length: 6 },
      () => status(`${g.url()}/`).then((s) => (answered.push(s), s)),
    );
    // The probe is held at the upstream: the other five must be refused while it is in flight.
    assertOk(await eventually(() => answered.length === 5), `answered: ${answered}`);
    assertEquals(answered, [503, 503, 503, 503, 503], "one probe, the rest refused at once");
    assertEquals(up.hits(), 2);
    release();
    assertEquals((await Promise.all(all)).sort(), [200, 503, 503, 503, 503, 503]);
    assertEquals(up.hits(), 2);
  } finally {
    await close();
  }
});

Deno.test("breaker: a request that waited for its body does not slip past a taken probe slot", async () => {
  // A retried POST is read into memory before it is sent.
  const { g, up, release, close } = await halfOpen(
    ", retries: { attempts: 1, methods: [POST], on: [connect_error] }",
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(g.url()).port) });
  const inFlight = async () =>
    sampleValue(
      parsePromText(await (await fetch(`${g.admin}/metrics`)).text()),
      "gateway_requests_in_flight",
    );
  try {
    // The POST's head arrives now, its body only after a GET took the one probe (held).
    const enc = new TextEncoder();
    await conn.write(enc.encode("POST / HTTP/1.1\r\nhost: gw\r\ncontent-length: 5\r\n\r\n"));
    assertOk(await eventually(async () => await inFlight() === 1), "the POST's head was taken");
    const probe = status(`${g.url()}/`);
    assertOk(await eventually(() => up.hits() === 2), "the GET's probe reached the upstream");
    await conn.write(enc.encode("order"));
    const buf = new Uint8Array(4096);
    // A POST that slipped through would be held at the upstream with the probe.
    const n = await within(10_000, conn.read(buf));
    assertOk(n !== "timed out", "the POST was not answered while the probe was in flight");
    const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    assertEquals(head.slice(0, 12), "HTTP/1.1 503", head);
    release();
    assertEquals(await probe, 200);
    assertEquals(up.hits(), 2, "the probe alone reached the upstream");
  } finally {
    conn.close();
    await close();
  }
});

Deno.test("breaker: one open target leaves the balancer; the other keeps serving", async () => {
  const bad = startFlaky(() => "reset");
  const good = startFlaky(() => ({ status: 200, body: "good" }));
  const g = await startGateway(baseConfig(`
upstreams:
  api:
    targets: [ { url: "${bad.url}" }, { url: "${good.url}" } ]
    circuit_breaker: { consecutive_failures: 2, open_s: 60 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`));
  try {
    const got = await statuses(`${g.url()}/`, 20);
    assertEquals(got.filter((s) => s === 502).length, 2, "two resets before it opened");
    assertEquals(bad.hits(), 2);
    assertEquals(good.hits(), 18);
    const view = await upstreamView(g, "api");
    assertEquals(view.targets.map((t: { circuit: string }) => t.circuit), ["open", "closed"]);
    assertEquals(view.available_targets, 1);
  } finally {
    await g.close();
    await bad.close();
    await good.close();
  }
});

Deno.test("breaker: an open circuit stays open across a reload that keeps the target", async () => {
  const up = startFlaky(() => ({ status: 500 }));
  const config = (route: string) =>
    baseConfig(
      oneUpstream(up.url, "    circuit_breaker: { consecutive_failures: 2, open_s: 60 }")
        .replace("name: api", `name: ${route}`),
    );
  const g = await startGateway(config("before"));
  try {
    await statuses(`${g.url()}/`, 2);
    await assertError(await fetch(`${g.url()}/`), 503, "circuit_open");
    await Deno.writeTextFile(g.file, config("after"));
    const r = await g.gw.reload("test");
    assertOk(r.ok, r.errors.join("\n"));
    await assertError(await fetch(`${g.url()}/`), 503, "circuit_open");
    assertEquals(up.hits(), 2);
    assertEquals(g.gw.plan.routes[0]!.name, "after");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("breaker: the ratio is checked when min_requests is reached by a success too", async () => {
  const answers = [500, 500, 200, 200, 200];
  const up = startFlaky((_req, n) => ({ status: answers[n - 1] ?? 200 }));
  const clock = new ManualClock(1_000_000);
  const g = await startGateway(
    baseConfig(oneUpstream(
      up.url,
      "    circuit_breaker: { failure_ratio: 0.5, min_requests: 4, window_s: 10, open_s: 30 }",
    )),
    { clock },
  );
  try {
    assertEquals(await statuses(`${g.url()}/`, 4), [500, 500, 200, 200]);
    // Four requests, two failed: 50%. Until 2026-12-07 only a failure checked the ratio, so this
    // request went to the upstream, and with its success (2 of 5) the circuit never opened.
    await assertError(await fetch(`${g.url()}/`), 503, "circuit_open");
    assertEquals(up.hits(), 4);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("breaker: WebSocket handshakes the upstream fails open the circuit like any request", async () => {
  const up = startFlaky(() => ({ status: 502, body: "down" }));
  const g = await startGateway(
    baseConfig(oneUpstream(up.url, "    circuit_breaker: { consecutive_failures: 2, open_s: 30 }")),
  );
  const handshake = [
    "GET /ws HTTP/1.1",
    "Host: localhost",
    "Connection: Upgrade, close",
    "Upgrade: websocket",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  ];
  try {
    for (let i = 0; i < 2; i++) {
      assertEquals((await rawRequest(g.url(), handshake)).status, 502, "the upstream's refusal");
    }
    // Until 2026-12-07 upgrades bypassed the breaker: they kept reaching a failing upstream.
    const refused = await rawRequest(g.url(), handshake);
    assertEquals(refused.status, 503);
    assertEquals(JSON.parse(refused.body).error.code, "circuit_open");
    assertEquals(up.hits(), 2);
    assertEquals((await upstreamView(g, "api")).targets[0].circuit, "open");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("breaker: aggregated calls count like requests and take half-open probe slots", async () => {
  let failing = true;
  const held = Promise.withResolvers<void>();
  const up = startFlaky(() =>
    failing ? { status: 503 } : { status: 200, body: '{"ok":true}', until: held.promise }
  );
  const clock = new ManualClock(0);
  const g = await startGateway(
    baseConfig(`
upstreams:
  api:
    targets: [ { url: "${up.url}" } ]
    circuit_breaker: { consecutive_failures: 2, open_s: 5, half_open_requests: 1 }
routes:
  - name: dash
    match: { path: /dash }
    aggregate: { calls: [ { key: part, upstream: api, path: /part, timeout_ms: 10000 } ] }
`),
    { clock },
  );
  const part = async () => {
    const res = await fetch(`${g.url()}/dash`);
    const body = await res.json();
    return body.error?.code ?? "ok";
  };
  try {
    assertEquals([await part(), await part()], ["upstream_error", "upstream_error"]);
    // Until 2026-12-08 aggregated calls were not counted: the circuit never opened.
    assertEquals((await upstreamView(g, "api")).targets[0].circuit, "open");
    assertEquals(await part(), "no_healthy_upstream");
    assertEquals(up.hits(), 2, "no call reached the upstream while open");

    failing = false;
    clock.advance(5_000);
    const answered: string[] = [];
    const all = Array.from({ length: 4 }, () => part().then((c) => (answered.push(c), c)));
    // The probe is held at the upstream: the other calls are refused while it is in flight.
    assertOk(await eventually(() => answered.length === 3), `answered: ${answered}`);
    assertEquals(answered, ["no_healthy_upstream", "no_healthy_upstream", "no_healthy_upstream"]);
    assertEquals(up.hits(), 3, "one probe (until 2026-12-08 every call went through)");
    held.resolve();
    assertEquals((await Promise.all(all)).filter((c) => c === "ok").length, 1);
    assertEquals((await upstreamView(g, "api")).targets[0].circuit, "closed");
  } finally {
    held.resolve();
    await g.close();
    await up.close();
  }
});

Deno.test("breaker: a request_ms spent waiting for a client's slow upload is not the target's failure", async () => {
  const up = startFlaky(() => ({ status: 200, body: "ok" }));
  const g = await startGateway(baseConfig(`
upstreams:
  api:
    targets: [ { url: "${up.url}" } ]
    timeout: { request_ms: 300 }
    circuit_breaker: { consecutive_failures: 2, open_s: 60 }
    outlier_detection: { consecutive_failures: 2, max_ejection_percent: 100 }
routes:
  - { name: api, match: { path: / }, upstream: api }
`));
  const port = Number(new URL(g.url()).port);
  const conns: Deno.Conn[] = [];
  try {
    // Two uploads that stall after their first bytes: the request deadline ends them.
    for (let i = 0; i < 2; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await conn.write(
        new TextEncoder().encode("POST / HTTP/1.1\r\nhost: gw\r\ncontent-length: 100\r\n\r\nab"),
      );
    }
    for (const conn of conns) {
      const buf = new Uint8Array(4096);
      const n = await within(10_000, conn.read(buf));
      assertOk(n !== "timed out" && n !== null, "answered at the deadline");
      const head = new TextDecoder().decode(buf.subarray(0, n));
      assertEquals(head.slice(0, 12), "HTTP/1.1 504", head);
    }
    const t = (await upstreamView(g, "api")).targets[0];
    // Until 2026-12-08 they counted as two timeouts of the target: its circuit opened and it was
    // ejected, and every other client got 503 for a minute.
    assertEquals([t.circuit, t.breaker.window.failures, t.outlier.consecutive_failures], [
      "closed",
      0,
      0,
    ]);
    assertEquals(await status(`${g.url()}/`), 200);
  } finally {
    for (const conn of conns) conn.close();
    await g.close();
    await up.close();
  }
});

Deno.test("breaker: a probe that outlived its half-open period does not decide the next one", async () => {
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  const up = startFlaky((req) =>
    req.path === "/fail"
      ? { status: 502 }
      : req.path === "/first"
      ? { status: 200, until: first.promise }
      : req.path === "/second"
      ? { status: 200, until: second.promise }
      : { status: 200 }
  );
  const clock = new ManualClock(0);
  const g = await startGateway(
    baseConfig(oneUpstream(
      up.url,
      "    circuit_breaker: { consecutive_failures: 1, open_s: 1, half_open_requests: 2 }",
    )),
    { clock },
  );
  const circuit = async () => (await upstreamView(g, "api")).targets[0].circuit;
  try {
    assertEquals(await status(`${g.url()}/fail`), 502);
    clock.advance(1_000);
    // Half-open: one probe is held, the other fails and reopens the circuit.
    const held = status(`${g.url()}/first`);
    assertOk(await eventually(() => up.hits() === 2));
    assertEquals(await status(`${g.url()}/fail`), 502);
    assertEquals(await circuit(), "open");
    clock.advance(1_000);
    // The next half-open period's two probes: one held, one passes.
    const probe = status(`${g.url()}/second`);
    assertOk(await eventually(() => up.hits() === 4));
    assertEquals(await status(`${g.url()}/`), 200);
    assertEquals(await circuit(), "half_open");
    first.resolve();
    assertEquals(await held, 200);
    // Until 2026-12-08 the old probe's success counted as this period's second: the circuit
    // closed with one of its probes still out.
    assertEquals(await circuit(), "half_open");
    second.resolve();
    assertEquals(await probe, 200);
    assertEquals(await circuit(), "closed");
  } finally {
    first.resolve();
    second.resolve();
    await g.close();
    await up.close();
  }
});
