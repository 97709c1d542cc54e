/**
 * The worker count a user gets without asking: one isolate per core, seen from
 * outside a real gateway process; one isolate, with the reason logged, where
 * the config has a `port: 0` listener; and a refusal when a count above one
 * is asked for with such a listener.
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { type GatewayProcess, spawnGateway } from "../helpers/process.ts";
import { FROM_SOURCE, runCli, statuses } from "./process.ts";
import { freePorts } from "../helpers/ports.ts";

const CORES = navigator.hardwareConcurrency;

function config(port: number, admin: number, upstream: string, server = ""): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
server: { drain_timeout_s: 3, config_watch: { enabled: false }${server} }
upstreams: { echo: { targets: [ { url: "${upstream}" } ] } }
routes: [ { name: r, match: { path: / }, upstream: echo } ]
`;
}

/** The parsed JSON log lines whose `msg` is `msg`. */
function logged(log: string[], msg: string): Record<string, unknown>[] {
  return log.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) =>
    l.msg === msg
  );
}

/** The `worker` labels of the samples in a Prometheus exposition, sorted. */
function workerLabels(metrics: string): string[] {
  return [...new Set([...metrics.matchAll(/\{worker="(\d+)"/g)].map((m) => m[1]!))]
    .sort((a, b) => Number(a) - Number(b));
}

const PORT_ZERO = 'listener "public" has port 0, which would give each worker a different ' +
  "random port";
/** Why the default runs one isolate where a listener has port 0 (on more than one core). */
const FALLBACK = `one per core would be ${CORES}, but ${PORT_ZERO}; give it a fixed port to use ` +
  "every core";

interface Running {
  gw: GatewayProcess;
  /** The configured public port (0 when asked for) and the admin port. */
  port: number;
  admin: number;
  file: string;
  upstream: string;
}

/**
 * Starts a gateway process (`args` after `run --config FILE`) with its public
 * listener on a free port, or on port 0 when `port0`; runs `body`; stops it
 * with SIGTERM and expects exit 0.
 */
async function withGateway(
  o: { port0?: boolean; args?: string[] },
  body: (r: Running) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gw-default-workers-" });
  const up = startUpstream();
  const [free, admin] = freePorts(2) as [number, number];
  const port = o.port0 ? 0 : free;
  const file = `${dir}/gateway.yaml`;
  try {
    await Deno.writeTextFile(file, config(port, admin, up.url));
    const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, o.args ?? [], {
      timeoutMs: 30_000,
    });
    try {
      await body({ gw, port, admin, file, upstream: up.url });
    } finally {
      assertEquals(await gw.stop("SIGTERM"), 0, gw.log.join("\n"));
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("no --workers: the process serves with one worker isolate per core", async () => {
  await withGateway({}, async ({ gw, port, admin }) => {
    assertEquals(
      logged(gw.log, "workers").map((l) => [l.level, l.workers, l.why]),
      [["info", CORES, "one per core"]],
      gw.log.join("\n"),
    );
    // Requests on fresh connections, so that every worker serves some.
    assertEquals(
      await statuses(`http://127.0.0.1:${port}/x`, 8 * CORES),
      new Array(8 * CORES).fill(200),
    );
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    // Each isolate logs its start as it opens its listener: waited for, as the log is read.
    await gw.logged(/"msg":"gateway started"/, CORES);
    const started = logged(gw.log, "gateway started").map((l) => String(l.worker));
    if (CORES > 1) {
      await gw.logged(/"msg":"cluster started"/);
      // One isolate per core: /metrics carries each one's samples, labelled 0..N-1.
      const all = Array.from({ length: CORES }, (_, i) => String(i));
      assertEquals(workerLabels(metrics), all);
      assertEquals(started.sort(), all);
      assertEquals(logged(gw.log, "cluster started")[0]?.workers, CORES);
    } else {
      console.log("one core here: the default is one isolate, without workers");
      assertEquals(workerLabels(metrics), []);
      assertEquals(started, ["undefined"]);
    }
  });
});

Deno.test("no --workers, a listener on port 0: one isolate, and the log says why", async () => {
  await withGateway({ port0: true }, async ({ gw, admin }) => {
    const [line, ...more] = logged(gw.log, "workers");
    assertEquals(more, []);
    if (CORES > 1) {
      assertEquals(line?.level, "warn");
      assertEquals(line?.workers, 1);
      assertEquals(line?.why, FALLBACK);
    } else {
      assertEquals([line?.level, line?.workers, line?.why], ["info", 1, "one per core"]);
    }
    // A single gateway on the main thread, on the port the kernel chose.
    await gw.logged(/"msg":"gateway started"/);
    const started = logged(gw.log, "gateway started");
    assertEquals(started.length, 1);
    assertEquals(started[0]!.worker, undefined);
    assertEquals(logged(gw.log, "cluster started"), []);
    const base = (started[0]!.listeners as Record<string, string>).public!;
    assertMatch(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    assertOk(!base.endsWith(":0"));
    assertEquals(await statuses(`${base}/x`, 4), [200, 200, 200, 200]);
    const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    assertEquals(workerLabels(metrics), []);
  });
});

Deno.test("an explicit count above 1 with a port 0 listener is refused; validate says the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-default-workers-" });
  try {
    const upstream = "http://127.0.0.1:1";
    await Deno.writeTextFile(`${dir}/flag.yaml`, config(0, 0, upstream));
    await Deno.writeTextFile(`${dir}/server.yaml`, config(0, 0, upstream, ", workers: 2"));

    const flag = await runCli(FROM_SOURCE, ["--config", "flag.yaml", "--workers", "2"], dir);
    assertEquals(flag.code, 1, flag.stderr);
    assertEquals(
      flag.stderr.trim().split("\n"),
      [
        `--workers 2 needs fixed listener ports: ${PORT_ZERO}`,
        "flag.yaml: not started, 1 error(s)",
      ],
    );
    const server = await runCli(FROM_SOURCE, ["--config", "server.yaml"], dir);
    assertEquals(server.code, 1, server.stderr);
    assertEquals(server.stderr.trim().split("\n"), [
      `server.workers: 2 needs fixed listener ports: ${PORT_ZERO}`,
      "server.yaml: not started, 1 error(s)",
    ]);

    const refused = await runCli(
      FROM_SOURCE,
      ["validate", "-c", "flag.yaml", "--workers", "2"],
      dir,
    );
    assertEquals(refused.code, 1);
    assertEquals(refused.stderr.trim().split("\n"), [
      `--workers 2 needs fixed listener ports: ${PORT_ZERO}`,
      "flag.yaml: 1 error(s)",
    ]);
    const fallback = await runCli(FROM_SOURCE, ["validate", "-c", "flag.yaml"], dir);
    assertEquals(fallback.code, 0, fallback.stderr);
    assertEquals(
      fallback.stdout.trim().split("\n")[1],
      `workers: 1 (${CORES > 1 ? FALLBACK : "one per core"})`,
    );
    const one = await runCli(FROM_SOURCE, ["validate", "-c", "server.yaml", "--workers", "1"], dir);
    assertEquals([one.code, one.stdout.trim().split("\n")[1]], [0, "workers: 1 (--workers 1)"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers 2: a reload to a port 0 listener is refused and the running config serves on", async () => {
  await withGateway({ args: ["--workers", "2"] }, async ({ gw, port, admin, file, upstream }) => {
    await Deno.writeTextFile(file, config(0, admin, upstream));
    const reload = await fetch(`http://127.0.0.1:${admin}/reload`, { method: "POST" });
    assertEquals(reload.status, 422);
    assertEquals(await reload.json(), {
      ok: false,
      hash: null,
      errors: [`the running workers cannot take it: ${PORT_ZERO}`],
    });
    assertEquals(await statuses(`http://127.0.0.1:${port}/x`, 8), new Array(8).fill(200));
    await gw.logged(/"msg":"cluster reload incomplete"/);
    assertEquals(logged(gw.log, "config reloaded"), []);
  });
});
