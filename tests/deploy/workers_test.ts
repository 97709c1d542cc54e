/**
 * `--workers N` as a user runs it: a separate gateway process with two worker
 * isolates on one port, driven through its public and admin listeners and signals.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { FROM_SOURCE, serveQuickstart, statuses } from "./process.ts";
import { freePorts } from "../helpers/ports.ts";
import { spawnGateway } from "../helpers/process.ts";
import { EXACT_LIMITS, exactLimitRoutes } from "../ratelimit/helpers.ts";
import { mergeExpositions } from "../../lib/cluster/admin_fanout.ts";
import { parsePromText, samplesOf, sampleValue } from "../observe/prom_text.ts";

const PROCESS_WIDE = [
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_start_time_seconds",
];

/**
 * The public listener and the admin listener on fixed ports (workers share them), then `body`.
 * The file is watched only when `watch` says so: the other tests reload when they choose to.
 */
function listeners(
  port: number,
  admin: number,
  body: string,
  adminExtra = "",
  watch = false,
): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin}${adminExtra} }
server: { drain_timeout_s: 10, config_watch: { enabled: ${watch}, debounce_ms: 50 } }
${body}`;
}

/** One route at `route`. */
function config(port: number, admin: number, upstream: string, route: string, extra = ""): string {
  return listeners(
    port,
    admin,
    `upstreams: { echo: { targets: [ { url: "${upstream}" } ] } }
routes: [ { name: r, match: { path: ${route} }, upstream: echo } ]
`,
    extra,
  );
}

Deno.test("--workers 2: admin reloads and signals reach every worker; SIGTERM drains", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-workers-" });
  // `/slow` is held until released: in flight for as long as the test needs.
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const slow = startUpstream(async (req) => {
    if (req.url.endsWith("/slow")) {
      arrived.resolve();
      await release.promise;
    }
    return Response.json({ url: new URL(req.url).pathname });
  });
  const [port, admin] = freePorts(2) as [number, number];
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(file, config(port, admin, slow.url, "/old", ", token: s3cret"));
  const auth = { headers: { authorization: "Bearer s3cret" } };
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
    readyHeaders: auth.headers,
    timeoutMs: 30_000,
  });
  try {
    // Logged around the time /readyz turned 200: waited for, not expected read already.
    await gw.logged(/"msg":"cluster started","workers":2/);
    const started = (await gw.logged(/"msg":"gateway started","worker":\d/, 2))
      .map((l) => JSON.parse(l).worker);
    assertEquals(started.sort(), [0, 1]);
    assertEquals(await statuses(`http://127.0.0.1:${port}/old`, 12), new Array(12).fill(200));

    // The main thread's admin listener checks the token before asking any worker.
    const denied = await fetch(`http://127.0.0.1:${admin}/routes`);
    assertEquals(denied.status, 401);
    await denied.body?.cancel();
    const ready = await fetch(`http://127.0.0.1:${admin}/readyz`, auth);
    assertEquals(await ready.json(), { status: "ready" });
    // /metrics: both workers' samples, labelled, one TYPE line per family.
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`, auth)).text();
    assertMatch(metrics, /\{worker="0"[,}]/);
    assertMatch(metrics, /\{worker="1"[,}]/);
    const types = metrics.split("\n").filter((l) => l.startsWith("# TYPE "));
    assertOk(types.length > 0);
    assertEquals(new Set(types).size, types.length);
    // The process's own CPU, memory and start time once, unlabelled; each isolate's heap per worker.
    const families = parsePromText(metrics);
    for (const name of PROCESS_WIDE) {
      assertEquals(samplesOf(families, name).map((s) => s.labels), [{}], name);
    }
    const rss = sampleValue(families, "process_resident_memory_bytes");
    const measured = await gw.rss();
    assertOk(Math.abs(rss - measured) < measured / 4, `${rss} reported, ${measured} measured`);
    assertEquals(
      samplesOf(families, "process_heap_bytes").map((s) => s.labels.worker).sort(),
      ["0", "1"],
    );

    // POST /reload reaches both workers: every fresh connection sees the new route.
    await Deno.writeTextFile(file, config(port, admin, slow.url, "/new", ", token: s3cret"));
    const reload = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST", ...auth });
    const result = await reload.json();
    assertEquals([reload.status, result.ok], [200, true]);
    assertEquals(await statuses(`http://127.0.0.1:${port}/new`, 12), new Array(12).fill(200));
    assertEquals(await statuses(`http://127.0.0.1:${port}/old`, 12), new Array(12).fill(404));

    // SIGHUP too.
    await Deno.writeTextFile(file, config(port, admin, slow.url, "/hup", ", token: s3cret"));
    Deno.kill(gw.pid, "SIGHUP");
    let hup: number[] = [];
    for (let i = 0; i < 50; i++) {
      hup = await statuses(`http://127.0.0.1:${port}/hup`, 12);
      if (hup.every((s) => s === 200)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(hup, new Array(12).fill(200));
    // Twelve connections may all have gone to one worker: each worker's line is waited for.
    const hupped = await gw.logged(/"msg":"config reloaded","worker":\d,"trigger":"SIGHUP"/, 2);
    assertEquals(hupped.map((l) => JSON.parse(l).worker).sort(), [0, 1]);

    // SIGTERM while a request is in flight: it completes, then the process exits 0. The
    // upstream holds it until both workers are draining.
    const inFlight = fetch(`http://127.0.0.1:${port}/hup/slow`);
    await arrived.promise;
    const status = gw.stop("SIGTERM");
    await gw.logged(/"msg":"draining","worker":\d/, 2);
    release.resolve();
    const res = await inFlight;
    assertEquals(res.status, 200);
    assertEquals((await res.json()).url, "/hup/slow");
    assertEquals(await status, 0);
    assertMatch(gw.log.join("\n"), /"msg":"stopped"}/);
  } finally {
    release.resolve();
    await gw.stop("SIGKILL");
    await slow.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers 2: a change of the watched config file reloads every worker", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-workers-" });
  const up = startUpstream();
  const [port, admin] = freePorts(2) as [number, number];
  const file = `${dir}/gateway.yaml`;
  const routeAt = (path: string) =>
    listeners(
      port,
      admin,
      `upstreams: { echo: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: ${path} }, upstream: echo } ]
`,
      "",
      true,
    );
  await Deno.writeTextFile(file, routeAt("/before"));
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
    timeoutMs: 30_000,
  });
  try {
    await Deno.writeTextFile(file, routeAt("/after"));
    let seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await statuses(`http://127.0.0.1:${port}/after`, 12);
      if (seen.every((s) => s === 200)) break;
    }
    assertEquals(seen, new Array(12).fill(200));
    const reloaded = await gw.logged(/"msg":"config reloaded","worker":\d,"trigger":"watch"/, 2);
    assertEquals(reloaded.map((l) => JSON.parse(l).worker).sort(), [0, 1]);
  } finally {
    assertEquals(await gw.stop("SIGTERM"), 0);
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Twelve requests in a row, each on a new connection, so the kernel spreads them over the workers. */
const twelve = (url: string, headers: Record<string, string>) => statuses(url, 12, headers);

Deno.test("--workers 2, store memory: a key added or deleted through the admin API holds in every worker from the moment the admin API answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-workers-" });
  const up = startUpstream();
  const [port, admin] = freePorts(2) as [number, number];
  const file = `${dir}/gateway.yaml`;
  const withConsumers = (consumers: string) =>
    listeners(
      port,
      admin,
      `auth: { keys: { kind: api_key, header: X-API-Key } }
consumers: [ ${consumers} ]
upstreams: { echo: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: echo, auth: [keys] } ]
`,
    );
  await Deno.writeTextFile(file, withConsumers("{ id: team-b }"));
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
    timeoutMs: 30_000,
  });
  try {
    const added = await fetch(`http://127.0.0.1:${admin}/keys`, {
      method: "POST",
      body: JSON.stringify({ consumer: "team-b" }),
    });
    assertEquals(added.status, 201);
    const { key } = await added.json();
    const withKey = { "x-api-key": key };
    assertEquals(await twelve(`http://127.0.0.1:${port}/x`, withKey), new Array(12).fill(200));
    const listed = await (await fetch(`http://127.0.0.1:${admin}/keys`)).json();
    assertEquals(listed.keys.filter((k: { source: string }) => k.source === "store").length, 1);

    const del = await fetch(`http://127.0.0.1:${admin}/keys/${key}`, { method: "DELETE" });
    assertEquals(del.status, 204);
    assertEquals(await twelve(`http://127.0.0.1:${port}/x`, withKey), new Array(12).fill(401));

    // A reload that drops the consumer deletes its runtime keys (each worker asks the
    // main thread, which deletes once): a config reusing the id does not revive them.
    const again = await fetch(`http://127.0.0.1:${admin}/keys`, {
      method: "POST",
      body: JSON.stringify({ consumer: "team-b", key: "team-b-runtime-key" }),
    });
    assertEquals(again.status, 201);
    await again.body?.cancel();
    const reloadWith = async (consumers: string) => {
      await Deno.writeTextFile(file, withConsumers(consumers));
      const res = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
      assertEquals([res.status, (await res.json()).ok], [200, true]);
    };
    await reloadWith("{ id: team-c }");
    await reloadWith("{ id: team-b }, { id: team-c }");
    const stored = await (await fetch(`http://127.0.0.1:${admin}/keys`)).json();
    assertEquals(stored.keys, []);
    assertEquals(
      await twelve(`http://127.0.0.1:${port}/x`, { "x-api-key": "team-b-runtime-key" }),
      new Array(12).fill(401),
    );
  } finally {
    assertEquals(await gw.stop("SIGTERM"), 0);
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers 2, store memory: 500 concurrent requests against a limit of 100 admit exactly 100, whichever home holds its state, across a reload that resizes the table", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-workers-" });
  const up = startUpstream(() => new Response("ok"));
  const [port, admin] = freePorts(2) as [number, number];
  const file = `${dir}/gateway.yaml`;
  const routes = exactLimitRoutes(up.url) +
    // Two limits, one kept in the shared table and one (the log) in the main thread.
    `  - { name: mixed, match: { path: /mixed }, upstream: a,` +
    ` rate_limit: [ ${EXACT_LIMITS[0]}, ${EXACT_LIMITS[3]} ] }\n` +
    // A key too long for a table slot: its state is the main thread's.
    `  - { name: long, match: { path: /long }, upstream: a, rate_limit:` +
    ` { algorithm: fixed_window, limit: 100, per: 1d, key: "header:x-tenant" } }\n`;
  await Deno.writeTextFile(file, listeners(port, admin, routes));
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
    timeoutMs: 30_000,
  });
  const tenant = { "x-tenant": "t".repeat(120) };
  try {
    const cases: [string, string, Record<string, string>][] = [
      ...EXACT_LIMITS.map((l, i): [string, string, Record<string, string>] => [l, `/r${i}`, {}]),
      ["token bucket and sliding log together", "/mixed", {}],
      ["a 120-character key", "/long", tenant],
    ];
    for (const [what, path, headers] of cases) {
      // Each request on its own connection: the kernel spreads them over both workers.
      const all = await Promise.all(
        Array.from({ length: 500 }, () => statuses(`http://127.0.0.1:${port}${path}`, 1, headers)),
      );
      const counts: Record<number, number> = {};
      for (const [s] of all) counts[s!] = (counts[s!] ?? 0) + 1;
      assertEquals(counts, { 200: 100, 429: 400 }, what);
    }
    assertEquals(up.received.length, 100 * cases.length);

    // Another max_keys gives the workers a new table: the counts come with it.
    await Deno.writeTextFile(
      file,
      listeners(port, admin, `store: { memory: { max_keys: 5000 } }\n${routes}`),
    );
    const reload = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    assertEquals([reload.status, (await reload.json()).ok], [200, true]);
    for (const [what, path, headers] of cases) {
      const after = await Promise.all(
        Array.from({ length: 20 }, () => statuses(`http://127.0.0.1:${port}${path}`, 1, headers)),
      );
      assertEquals(after.flat(), new Array(20).fill(429), `${what}, after the reload`);
    }
    assertEquals(up.received.length, 100 * cases.length);
  } finally {
    assertEquals(await gw.stop("SIGTERM"), 0);
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers 2 serves the quickstart config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-workers-" });
  try {
    await serveQuickstart(FROM_SOURCE, dir, ["--workers", "2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mergeExpositions() keeps one HELP/TYPE per family and labels samples by worker", () => {
  const w = (n: number) =>
    `# HELP gw_requests_total Requests served.
# TYPE gw_requests_total counter
gw_requests_total{route="a"} ${n}
gw_requests_total{} ${n}
# HELP gw_latency_seconds Latency.
# TYPE gw_latency_seconds histogram
gw_latency_seconds_bucket{le="0.1"} ${n}
gw_latency_seconds_sum ${n}
gw_up 1
`;
  const merged = mergeExpositions([w(1), w(2)]);
  assertEquals(
    merged,
    `# HELP gw_requests_total Requests served.
# TYPE gw_requests_total counter
gw_requests_total{worker="0",route="a"} 1
gw_requests_total{worker="0"} 1
gw_requests_total{worker="1",route="a"} 2
gw_requests_total{worker="1"} 2
# HELP gw_latency_seconds Latency.
# TYPE gw_latency_seconds histogram
gw_latency_seconds_bucket{worker="0",le="0.1"} 1
gw_latency_seconds_sum{worker="0"} 1
gw_latency_seconds_bucket{worker="1",le="0.1"} 2
gw_latency_seconds_sum{worker="1"} 2
gw_up{worker="0"} 1
gw_up{worker="1"} 1
`,
  );
  assertOk(!merged.includes("\n\n"));
});
