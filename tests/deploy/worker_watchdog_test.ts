/**
 * `--workers 2` as a user runs it (a separate process) with a worker truly
 * stuck: a route's `path_regex` backtracks catastrophically on a crafted path
 * (ReDoS), so the worker that takes that request runs one synchronous regex
 * match that does not end in any time that matters. Nothing in the gateway is
 * there for the test: whichever worker the kernel gives the connection is the
 * stuck one, and the log says which. The watchdog's bounds are shortened in
 * the config to a 100 ms interval and 0.5 s of silence.
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

const KILL_AFTER_S = 0.5;

/** `(a+)+$` against 40 a's and a b: about 2^40 ways to split the a's, each tried before failing. */
const STUCK_PATH = `/hang/${"a".repeat(40)}b`;

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
  - { name: redos, match: { path_regex: "^/hang/(a+)+$" }, upstream: echo }
`;
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

Deno.test("--workers 2: a worker stuck in a synchronous call is terminated by the watchdog, logged, counted and replaced; as Deno cannot stop it, the gateway then exits for its supervisor, and started again serves every request", async () => {
  const up = startUpstream();
  const dir = await Deno.makeTempDir({ prefix: "gw-watchdog-" });
  const file = `${dir}/gateway.yaml`;
  const [port, admin] = freePorts(2) as [number, number];
  await Deno.writeTextFile(file, config(port, admin, up.url, KILL_AFTER_S));
  const start = () =>
    spawnGateway(file, `http://127.0.0.1:${admin}/readyz`, ["--workers", "2"], {
      timeoutMs: 30_000,
    });
  const gw = await start();
  /** The gateway started again, as its supervisor would. */
  const restarted: GatewayProcess[] = [];
  const stuckClient = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const giveUp = new AbortController();
  let exitCode: number | undefined;
  try {
    // The connection hangs with its worker; what becomes of it is not the point.
    const hanging = fetch(`http://127.0.0.1:${port}${STUCK_PATH}`, {
      client: stuckClient,
      signal: giveUp.signal,
    }).then((r) => r.body?.cancel(), () => {});

    const [line] = await gw.logged(/"msg":"worker unresponsive; restarting"/, 1, 15_000);
    const killed = JSON.parse(line!);
    const stuck: number = killed.worker;
    assertOk(stuck === 0 || stuck === 1, line);
    assertEquals(killed.level, "error", line);
    assertOk(killed.silent_ms >= KILL_AFTER_S * 1000, line);
    assertOk(killed.silent_ms < 10_000, line);
    assertEquals(typeof killed.in_ms, "number", line);

    // Its lines follow the `msg` field (`JsonLogger`).
    await gw.logged(new RegExp(`"msg":"worker restarted","worker":${stuck}[,}]`), 1, 15_000);
    // The replacement serves beside the other worker, and the restart is counted.
    const ready = await fetch(`http://127.0.0.1:${admin}/readyz`);
    assertEquals([ready.status, await ready.json()], [200, { status: "ready" }]);
    const res = await fetch(`http://127.0.0.1:${admin}/metrics`);
    assertEquals(res.status, 200);
    const metrics = parsePromText(await res.text());
    const restarts = (worker: number, reason: string) =>
      sampleValue(metrics, "gateway_worker_restarts_total", { worker: String(worker), reason });
    assertEquals(metrics.get("gateway_worker_restarts_total")?.type, "counter");
    assertEquals([restarts(stuck, "unresponsive"), restarts(stuck, "crash")], [1, 0]);
    assertEquals([restarts(1 - stuck, "unresponsive"), restarts(1 - stuck, "crash")], [0, 0]);
    const silences = samplesOf(metrics, "gateway_worker_silent_seconds");
    assertOk(silences.every((s) => s.value < KILL_AFTER_S), JSON.stringify(silences));

    // The stuck isolate's thread still runs, with its listener: the gateway gives itself up.
    const [exiting] = await gw.logged(/"msg":"terminated worker still running/, 1, 15_000);
    assertEquals(
      [JSON.parse(exiting!).worker, JSON.parse(exiting!).exit_code],
      [stuck, EXIT_FOR_RESTART],
    );
    exitCode = await gw.exited();
    assertEquals(exitCode, EXIT_FOR_RESTART, gw.log.join("\n"));
    giveUp.abort();
    await hanging;

    // What systemd's Restart=on-failure does: started again, no new connection hangs.
    restarted.push(await start());
    assertEquals(
      await statusesWithin(`http://127.0.0.1:${port}/ok`, 20, 3_000),
      new Array(20).fill(200),
    );
  } finally {
    giveUp.abort();
    stuckClient.close();
    exitCode ??= await gw.stop("SIGKILL");
    const codes = await Promise.all(restarted.map((g) => g.stop("SIGTERM")));
    await up.close();
    await Deno.remove(dir, { recursive: true });
    assertEquals(codes.filter((c) => c !== 0), [], "the restarted gateway's exit code");
  }
});
