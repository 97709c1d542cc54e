/**
 * `--workers 2` as a user runs it (a separate process) with a worker truly
 * stuck: the process runs the gateway's own `run` code (`runGateway`), but its
 * worker isolates run `fixtures/stuck_worker.ts`, the real worker in which
 * worker 1 spins in `for (;;) {}` a second after it started serving, once
 * (`HANG_MARKER`). The watchdog's bounds are shortened in the config to a
 * 100 ms interval and 0.5 s of silence.
 *
 * Deno 2.9's `Worker.terminate()` does not stop such an isolate (its thread runs
 * on, its listener stays open), so after the in-process restart the gateway
 * exits with `EXIT_FOR_RESTART`, and the test plays the supervisor.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { freePorts } from "../helpers/ports.ts";
import { type GatewayProcess, spawnGateway } from "../helpers/process.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { parsePromText, samplesOf, sampleValue } from "../observe/prom_text.ts";
import { EXIT_FOR_RESTART } from "../../lib/cluster/cluster.ts";
import { V8_FLAGS_ARG } from "../../lib/cli/v8_flags.ts";

const KILL_AFTER_S = 0.5;
/** The worker `stuck_worker.ts` makes spin. */
const STUCK = 1;
const LAUNCHER = new URL("./fixtures/stuck_worker_gateway.ts", import.meta.url).pathname;

function config(port: number, admin: number, upstream: string, killAfterS: number): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
server:
  drain_timeout_s: 2
  config_watch: { enabled: false }
  watchdog: { interval_ms: 100, kill_after_s: ${killAfterS} }
upstreams: { echo: { targets: [ { url: "${upstream}" } ] } }
routes:
  - { name: ok, match: { path: /ok }, upstream: echo }
`;
}

interface Setup {
  dir: string;
  file: string;
  port: number;
  admin: number;
  /** Starts the launcher: worker 1 spins once, the first time it serves. */
  startStuck(): Promise<GatewayProcess>;
}

async function setUp(upstream: string, killAfterS: number): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "gw-watchdog-" });
  const file = `${dir}/gateway.yaml`;
  const [port, admin] = freePorts(2) as [number, number];
  await Deno.writeTextFile(file, config(port, admin, upstream, killAfterS));
  return {
    dir,
    file,
    port,
    admin,
    startStuck: () =>
      spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
        command: [Deno.execPath(), "run", "-A", V8_FLAGS_ARG, LAUNCHER],
        env: { HANG_MARKER: `${dir}/worker-1-spun` },
        timeoutMs: 30_000,
      }),
  };
}

/** Waits for the fixture's line: worker 1 spins from then on. */
async function spinning(gw: GatewayProcess): Promise<void> {
  const [line] = await gw.logged(/"msg":"test: worker spinning"/, 1, 15_000);
  assertEquals(JSON.parse(line!).worker, STUCK, line);
}

/** Whether the process is still running `ms` from now (its exit code otherwise). */
async function runningAfter(gw: GatewayProcess, ms: number): Promise<true | number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const still = new Promise<true>((r) => (timer = setTimeout(() => r(true), ms)));
  const r = await Promise.race([gw.child.status.then((s) => s.code), still]);
  clearTimeout(timer);
  return r;
}

/**
 * Statuses of `n` requests, each on a new connection (the kernel spreads them over the
 * workers), each given up after `limitMs`: a hung one fails the test instead of holding it.
 */
async function statusesWithin(url: string, n: number, limitMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    try {
      const res = await fetch(url, { client, signal: AbortSignal.timeout(limitMs) });
      await res.body?.cancel();
      out.push(res.status);
    } finally {
      client.close();
    }
  }
  return out;
}

Deno.test("--workers 2: a worker stuck in a synchronous loop is terminated by the watchdog, logged, counted and replaced; as Deno cannot stop it, the gateway then exits for its supervisor, and started again serves every request", async () => {
  const up = startUpstream();
  const s = await setUp(up.url, KILL_AFTER_S);
  const gw = await s.startStuck();
  /** The gateway started again, as its supervisor would. */
  const restarted: GatewayProcess[] = [];
  let exitCode: number | undefined;
  try {
    await spinning(gw);
    const [line] = await gw.logged(/"msg":"worker unresponsive; restarting"/, 1, 15_000);
    const killed = JSON.parse(line!);
    assertEquals(killed.worker, STUCK, line);
    assertEquals(killed.level, "error", line);
    assertOk(killed.silent_ms >= KILL_AFTER_S * 1000, line);
    assertOk(killed.silent_ms < 10_000, line);
    assertEquals(typeof killed.in_ms, "number", line);

    // Its lines follow the `msg` field (`JsonLogger`).
    await gw.logged(new RegExp(`"msg":"worker restarted","worker":${STUCK}[,}]`), 1, 15_000);
    // The replacement serves beside the other worker, and the restart is counted.
    const ready = await fetch(`http://127.0.0.1:${s.admin}/readyz`);
    assertEquals([ready.status, await ready.json()], [200, { status: "ready" }]);
    const res = await fetch(`http://127.0.0.1:${s.admin}/metrics`);
    assertEquals(res.status, 200);
    const metrics = parsePromText(await res.text());
    const restarts = (worker: number, reason: string) =>
      sampleValue(metrics, "gateway_worker_restarts_total", { worker: String(worker), reason });
    assertEquals(metrics.get("gateway_worker_restarts_total")?.type, "counter");
    assertEquals([restarts(STUCK, "unresponsive"), restarts(STUCK, "crash")], [1, 0]);
    assertEquals([restarts(1 - STUCK, "unresponsive"), restarts(1 - STUCK, "crash")], [0, 0]);
    const silences = samplesOf(metrics, "gateway_worker_silent_seconds");
    assertOk(silences.every((s) => s.value < KILL_AFTER_S), JSON.stringify(silences));

    // The stuck isolate's thread still runs, with its listener: the gateway gives itself up.
    const [exiting] = await gw.logged(/"msg":"terminated worker still running/, 1, 15_000);
    assertEquals(
      [JSON.parse(exiting!).worker, JSON.parse(exiting!).exit_code],
      [STUCK, EXIT_FOR_RESTART],
    );
    exitCode = await gw.exited();
    assertEquals(exitCode, EXIT_FOR_RESTART, gw.log.join("\n"));

    // What systemd's Restart=on-failure does: started again, no new connection hangs.
    restarted.push(
      await spawnGateway(s.file, `http://127.0.0.1:${s.admin}/readyz`, ["--workers", "2"], {
        timeoutMs: 30_000,
      }),
    );
    assertEquals(
      await statusesWithin(`http://127.0.0.1:${s.port}/ok`, 20, 3_000),
      new Array(20).fill(200),
    );
  } finally {
    // A process that did not exit may still spin: only SIGKILL surely ends it.
    exitCode ??= await gw.stop("SIGKILL");
    const codes = await Promise.all(restarted.map((g) => g.stop("SIGTERM")));
    await up.close();
    await Deno.remove(s.dir, { recursive: true });
    assertEquals(codes.filter((c) => c !== 0), [], "the restarted gateway's exit code");
  }
});

Deno.test("--workers 2 with watchdog kill_after_s: 0: a worker stuck in a synchronous loop is seen silent but never terminated, and the process does not exit", async () => {
  const up = startUpstream();
  const s = await setUp(up.url, 0);
  const gw = await s.startStuck();
  try {
    await spinning(gw);
    // Answers once it gives up on the stuck worker (the admin API's 5 s bound): by then the
    // silence is far past the one the test above kills after.
    const res = await fetch(`http://127.0.0.1:${s.admin}/metrics`);
    assertEquals(res.status, 200);
    const metrics = parsePromText(await res.text());
    const of = (name: string, worker: number) =>
      sampleValue(metrics, name, { worker: String(worker) });
    assertEquals(of("gateway_worker_unresponsive", STUCK), 1);
    const silent = of("gateway_worker_silent_seconds", STUCK);
    assertOk(silent >= 4 * KILL_AFTER_S, `silent ${silent} s`);
    for (const worker of [0, 1]) {
      for (const reason of ["unresponsive", "crash"]) {
        const n = sampleValue(metrics, "gateway_worker_restarts_total", {
          worker: String(worker),
          reason,
        });
        assertEquals(n, 0, `${worker} ${reason}`);
      }
    }
    // A terminate would have come at the first 100 ms tick, an exit 3 s after it: both long due.
    assertEquals(await runningAfter(gw, 500), true, gw.log.join("\n"));
    const acted = gw.log.filter((l) =>
      /"msg":"(worker unresponsive|worker restarted|terminated worker still running)/.test(l)
    );
    assertEquals(acted, []);
  } finally {
    // Only SIGKILL surely ends a process whose thread spins.
    await gw.stop("SIGKILL");
    await up.close();
    await Deno.remove(s.dir, { recursive: true });
  }
});
