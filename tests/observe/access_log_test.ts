/** The access log through a real listener: fields, redaction, sampling, trace context, rotation. */
import { assertEquals, assertMatch, assertOk, assertRejects } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { ManualClock } from "../../lib/core/clock.ts";
import { ConfigError } from "../../lib/config/issues.ts";

const ARRIVAL = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function config(upstream: string, accessLog: string, extra = ""): string {
  return `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 5, config_watch: { enabled: false } }
observe:
  access_log: { ${accessLog} }
auth:
  keys: { kind: api_key, query: k }
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: orders, match: { path: /orders }, upstream: a }
${extra}`;
}

/** Runs `fn` against a gateway logging as `accessLog` says, in front of an upstream answering `body`. */
async function withGateway(
  accessLog: string,
  fn: (g: TestGateway, up: TestServer) => Promise<void>,
  opts: { body?: string; clock?: ManualClock } = {},
): Promise<void> {
  const up = startUpstream(() => new Response(opts.body ?? "ok"));
  try {
    const g = await startGateway(
      config(up.url, accessLog),
      opts.clock ? { clock: opts.clock } : {},
    );
    try {
      await fn(g, up);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
}

async function readLog(g: TestGateway, name = "access.log"): Promise<Record<string, unknown>[]> {
  await g.gw.deps.accessLogs.flushAll();
  const text = await Deno.readTextFile(`${g.dir}/${name}`);
  assertOk(text.endsWith("\n"));
  return text.trimEnd().split("\n").map((l) => JSON.parse(l));
}

Deno.test("access log: every field of a proxied request and of a refusal", async () => {
  await withGateway("path: access.log", async (g, up) => {
    const res = await fetch(`${g.url()}/orders/7?page=2`, {
      method: "POST",
      body: "abcdef",
      headers: {
        "x-request-id": "req-1",
        "user-agent": "probe/1.0",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      },
    });
    assertEquals(await res.text(), "0123456789");
    const missing = await fetch(`${g.url()}/nowhere`, { headers: { "x-request-id": "req-2" } });
    const missingBody = await missing.arrayBuffer();
    assertEquals(missing.status, 404);

    const [ok, refused] = await readLog(g);
    const { latency_ms, upstream_latency_ms, ...stable } = ok as Record<string, number>;
    assertOk(latency_ms! > 0 && upstream_latency_ms! > 0 && upstream_latency_ms! <= latency_ms!);
    assertEquals(stable, {
      time: "2026-01-02T03:04:05.678Z",
      request_id: "req-1",
      trace_id: "0af7651916cd43dd8448eb211c80319c",
      client_ip: "127.0.0.1",
      method: "POST",
      host: "127.0.0.1",
      path: "/orders/7?page=2",
      listener: "public",
      route: "orders",
      upstream: "a",
      upstream_target: up.url,
      status: 200,
      bytes_in: 6,
      bytes_out: 10,
      attempts: 1,
      consumer: null,
      rate_limit: null,
      cache: null,
      error_code: null,
      user_agent: "probe/1.0",
    });
    assertEquals(refused!.route, null);
    assertEquals(refused!.status, 404);
    assertEquals(refused!.error_code, "route_not_found");
    assertEquals(refused!.bytes_out, missingBody.byteLength);
    assertEquals(refused!.upstream, null);
    assertEquals(refused!.upstream_latency_ms, null);
    assertMatch(String(refused!.trace_id), /^[0-9a-f]{32}$/);
  }, { body: "0123456789", clock: new ManualClock(ARRIVAL) });
});

Deno.test("access log: credentials in the query are masked, other parameters kept", async () => {
  await withGateway("path: access.log, redact_query: [session]", async (g, up) => {
    const queries = [
      "?api_key=s3cr3t&page=2",
      "?TOKEN=tokenVALUE&q=x&access%5Ftoken=zzz",
      "?session=42&k=provider-query&keep=1",
      "?signature=sig&X-Amz-Credential=cred&flag",
      "?plain=1",
    ];
    for (const q of queries) await (await fetch(`${g.url()}/orders${q}`)).body?.cancel();
    const paths = (await readLog(g)).map((r) => r.path);
    assertEquals(paths, [
      "/orders?api_key=REDACTED&page=2",
      "/orders?TOKEN=REDACTED&q=x&access%5Ftoken=REDACTED",
      "/orders?session=REDACTED&k=REDACTED&keep=1",
      "/orders?signature=REDACTED&X-Amz-Credential=REDACTED&flag",
      "/orders?plain=1",
    ]);
    // The upstream still gets the query as sent: masking is for the log only.
    assertEquals(up.received[0]!.url, "/orders?api_key=s3cr3t&page=2");
    const raw = await Deno.readTextFile(`${g.dir}/access.log`);
    // Values chosen so that no request or trace id (hex) can contain them.
    for (const secret of ["s3cr3t", "tokenVALUE", "zzz", "provider-query", "cred"]) {
      assertEquals(raw.includes(secret), false, `${secret} leaked into the access log`);
    }
  });
});

Deno.test("access log: sample 0 writes refusals and errors only", async () => {
  await withGateway("path: access.log, sample: 0", async (g) => {
    for (let i = 0; i < 5; i++) await (await fetch(`${g.url()}/orders/${i}`)).body?.cancel();
    await (await fetch(`${g.url()}/missing`)).body?.cancel();
    const log = await readLog(g);
    assertEquals(log.map((r) => [r.path, r.status]), [["/missing", 404]]);
  });
});

Deno.test("tracing: traceparent continues upstream with the gateway's span; tracestate passes", async () => {
  await withGateway("path: access.log", async (g, up) => {
    await (await fetch(`${g.url()}/orders`, {
      headers: {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        tracestate: "vendor=abc",
      },
    })).body?.cancel();
    await (await fetch(`${g.url()}/orders`, { headers: { traceparent: "garbage" } })).body
      ?.cancel();
    const [continued, started] = up.received.map((r) => r.headers);
    const tp = continued!.get("traceparent")!.split("-");
    assertEquals(tp[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assertOk(tp[2] !== "00f067aa0ba902b7", "the gateway's hop has its own span id");
    assertEquals(tp[3], "01");
    assertEquals(continued!.get("tracestate"), "vendor=abc");
    const fresh = started!.get("traceparent")!;
    assertMatch(fresh, /^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
    assertEquals(started!.get("tracestate"), null);
    const log = await readLog(g);
    assertEquals(log.map((r) => r.trace_id), [tp[1], fresh.split("-")[1]]);
  });
});

Deno.test("access log: SIGUSR1-style reopen writes to a fresh file after rotation", async () => {
  await withGateway("path: access.log", async (g) => {
    await (await fetch(`${g.url()}/orders/1`)).body?.cancel();
    await g.gw.deps.accessLogs.flushAll();
    await Deno.rename(`${g.dir}/access.log`, `${g.dir}/access.log.1`);
    await (await fetch(`${g.url()}/orders/2`)).body?.cancel();
    await g.gw.reopenLogs();
    await (await fetch(`${g.url()}/orders/3`)).body?.cancel();
    assertEquals((await readLog(g, "access.log.1")).map((r) => r.path), ["/orders/1", "/orders/2"]);
    assertEquals((await readLog(g)).map((r) => r.path), ["/orders/3"]);
  });
});

Deno.test("access log: an unwritable path is a config error at start and on reload", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    await assertRejects(
      startGateway(config(up.url, "path: no/such/dir/access.log")),
      (e: unknown) =>
        e instanceof ConfigError &&
        /gateway\.yaml:\d+:\d+: observe\.access_log\.path: cannot open the access log/.test(
          e.message,
        ),
    );
    const g = await startGateway(config(up.url, "path: access.log"));
    try {
      await Deno.writeTextFile(g.file, config(up.url, "path: no/such/dir/access.log"));
      const r = await g.gw.reload();
      assertEquals(r.ok, false);
      assertMatch(r.errors.join("\n"), /observe\.access_log\.path: cannot open the access log/);
      assertMatch(r.errors.join("\n"), /gateway\.yaml:\d+:\d+/);
      await (await fetch(`${g.url()}/orders`)).body?.cancel();
      assertEquals((await readLog(g)).length, 1);
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
});

Deno.test("observe config: bad values are refused with file, line and key", async () => {
  const up = startUpstream(() => new Response("ok"));
  try {
    await assertRejects(
      startGateway(config(up.url, "path: access.log, sample: 1.5")),
      (e: unknown) =>
        e instanceof ConfigError &&
        /gateway\.yaml:6:\d+: observe\.access_log\.sample: .*1/.test(e.message),
    );
    await assertRejects(
      startGateway(config(up.url, "path: access.log, flush_ms: 0")),
      (e: unknown) => e instanceof ConfigError && /observe\.access_log\.flush_ms/.test(e.message),
    );
  } finally {
    await up.close();
  }
});

Deno.test("access log: stdout is the default destination", async () => {
  const up = startUpstream(() => new Response("ok"));
  const out: string[] = [];
  const g = await startGateway(
    `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
upstreams: { a: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`,
    { stdout: (text) => out.push(text) },
  );
  try {
    await (await fetch(`${g.url()}/hello`)).body?.cancel();
    await g.gw.deps.accessLogs.flushAll();
    const lines = out.join("").trimEnd().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => [l.route, l.path, l.status]), [["r", "/hello", 200]]);
  } finally {
    await g.close();
    await up.close();
  }
});
