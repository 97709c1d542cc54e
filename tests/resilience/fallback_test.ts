/** Graceful degradation: static fallbacks, the stale-if-error hook, and config errors. */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { parseConfig } from "../../lib/config/load.ts";
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { RequestContext } from "../../lib/core/context.ts";
import { incomingOf } from "../../lib/server/incoming.ts";
import { HeaderEdits } from "../../lib/proxy/header_edits.ts";
import { parseTraceparent } from "../../lib/observe/trace.ts";
import type { StaleResponse } from "../../lib/resilience/fallback.ts";
import { STALE_RESPONSE } from "../../lib/cache/policy.ts";
import { startFlaky } from "./flaky.ts";
import { oneUpstream, upstreamView } from "./support.ts";

Deno.test("fallback: served when the upstream is down, times out, or its circuit is open", async () => {
  const dead = startFlaky();
  await dead.stop();
  const hanging = startFlaky(() => "hang");
  const g = await startGateway(baseConfig(`
upstreams:
  dead:
    targets: [ { url: "${dead.url}" } ]
    circuit_breaker: { consecutive_failures: 2, open_s: 60 }
  hanging: { targets: [ { url: "${hanging.url}" } ], timeout: { first_byte_ms: 50 } }
routes:
  - name: text
    match: { path: /text }
    upstream: dead
    fallback: { status: 503, headers: { Retry-After: "120" }, body: "Back soon" }
  - name: slow
    match: { path: /slow }
    upstream: hanging
    fallback: { status: 200, body: [] }
  - { name: bare, match: { path: / }, upstream: dead }
`));
  try {
    for (let i = 0; i < 3; i++) {
      // Connection refused twice, then the open circuit: the same fallback each time.
      const res = await fetch(`${g.url()}/text`);
      assertEquals(
        [
          res.status,
          res.headers.get("retry-after"),
          res.headers.get("content-type"),
          await res.text(),
        ],
        [503, "120", "text/plain; charset=utf-8", "Back soon"],
      );
    }
    assertEquals((await upstreamView(g, "dead")).targets[0].circuit, "open");
    await assertError(await fetch(`${g.url()}/other`), 503, "circuit_open");

    const slow = await fetch(`${g.url()}/slow`);
    assertEquals([slow.status, await slow.json()], [200, []]);
  } finally {
    await g.close();
    await hanging.close();
  }
});

Deno.test("fallback: an upstream's own 5xx answer passes through unchanged", async () => {
  const up = startFlaky(() => ({ status: 500, body: "app error" }));
  const g = await startGateway(
    baseConfig(oneUpstream(up.url, "", `, fallback: { status: 200, body: "fallback" }`)),
  );
  try {
    const res = await fetch(`${g.url()}/`);
    assertEquals([res.status, await res.text()], [500, "app error"]);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("stale-if-error: a stale entry offered by the cache stage wins over error and fallback", async () => {
  let answer: "refused" | 503 | 200 = 503;
  const up = startFlaky(() => (answer === 503 ? { status: 503 } : { status: 200, body: "fresh" }));
  const g = await startGateway(
    baseConfig(oneUpstream(up.url, "", `, fallback: { status: 200, body: "fallback" }`)),
  );
  // The route chain as the plan composed it, called with what the cache stage would leave in
  // ctx.locals (the cache itself is another stage's work).
  const route = g.gw.plan.routes[0]!;
  const call = async (stale: StaleResponse | null) => {
    const ctx = new RequestContext(
      incomingOf(new Request(`${g.url()}/item`)),
      "GET",
      "/item",
      "",
      "127.0.0.1",
      "127.0.0.1",
      "127.0.0.1",
      { name: "public", tls: false },
      Date.now(),
      performance.now(),
      crypto.randomUUID(),
      parseTraceparent(null, null),
      new HeaderEdits(),
    );
    if (stale) ctx.locals.set(STALE_RESPONSE, stale);
    const res = await route.handler(ctx);
    return { status: res.status, body: await res.text(), errorCode: ctx.errorCode };
  };
  const stale = () => new Response("stale copy", { headers: { age: "90" } });
  try {
    assertEquals(await call(stale), { status: 200, body: "stale copy", errorCode: null });
    assertEquals(up.hits(), 1, "a 503 answer is replaced by the stale entry");
    assertEquals(await call(() => null), { status: 503, body: "", errorCode: null }, "too old");
    await up.stop();
    answer = "refused";
    assertEquals(await call(stale), {
      status: 200,
      body: "stale copy",
      errorCode: "bad_gateway",
    });
    assertEquals(await call(null), { status: 200, body: "fallback", errorCode: "bad_gateway" });
    up.start();
    answer = 200;
    assertEquals(await call(stale), { status: 200, body: "fresh", errorCode: null });
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("config: resilience mistakes are refused with file, line, key and what was expected", async () => {
  const cases: [string, RegExp][] = [
    [
      `upstreams:\n  a:\n    targets: [ { url: "http://127.0.0.1:1" } ]\n    circuit_breaker: { shared: true }\n`,
      /gw\.yaml:4:\d+: upstreams\.a\.circuit_breaker\.shared: a shared circuit breaker needs store\.kind: redis/,
    ],
    [
      `upstreams:\n  a:\n    targets: [ { url: "http://127.0.0.1:1" } ]\n    retries: { on: [connect_error, 404] }\n`,
      /gw\.yaml:4:\d+: upstreams\.a\.retries\.on\[1\]: expected a 5xx status to retry on/,
    ],
    [
      `upstreams:\n  a:\n    targets: [ { url: "http://127.0.0.1:1" } ]\n    outlier_detection: { base_ejection_s: 30, max_ejection_s: 10 }\n`,
      /gw\.yaml:4:\d+: upstreams\.a\.outlier_detection\.max_ejection_s: expected max_ejection_s at least base_ejection_s/,
    ],
    ...([
      ["150", "expected a value <= 100, got number 150"],
      ["-1", "expected a value >= 0, got number -1"],
      ["12.5", "expected int, got number 12.5"],
      ["half", 'expected number, got the string "half"'],
    ] as const).map(([value, message]): [string, RegExp] => [
      `upstreams:\n  a:\n    targets: [ { url: "http://127.0.0.1:1" } ]\n    outlier_detection: { max_ejection_percent: ${value} }\n`,
      new RegExp(
        `gw\\.yaml:4:\\d+: upstreams\\.a\\.outlier_detection\\.max_ejection_percent: ${
          message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
        }`,
      ),
    ]),
    [
      `upstreams:\n  a: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - { name: r, upstream: a, fallback: { status: 204, body: "x" } }\n`,
      /gw\.yaml:4:\d+: routes\[0\]\.fallback\.body: a 204, 205 or 304 fallback cannot have a body/,
    ],
    [
      `upstreams:\n  a: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - { name: r, upstream: a, retries: { budget_ratio: 0.5 } }\n`,
      /gw\.yaml:4:\d+: routes\[0\]\.retries\.budget_ratio: unknown key/,
    ],
    [
      `upstreams:\n  a:\n    targets: [ { url: "http://127.0.0.1:1" } ]\n    queue: 10\n`,
      /gw\.yaml:4:\d+: upstreams\.a\.queue: queue needs max_concurrent/,
    ],
  ];
  for (const [yaml, expected] of cases) {
    let messages = "";
    try {
      await parseConfig(yaml, "gw.yaml");
    } catch (e) {
      assertOk(e instanceof ConfigError, String(e));
      messages = e.issues.map(formatIssue).join("\n");
    }
    assertMatch(messages, expected);
  }
});
