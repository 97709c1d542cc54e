/**
 * Failure drill: the gateway (its own process) balances steady load over two
 * upstream processes; one is killed (SIGKILL) mid-run and later restarted on
 * the same port. Reports what clients saw in each phase, how long the gateway
 * took to notice, and how long to readmit the restored target.
 *
 *   deno task drill [--concurrency 16] [--phase-s 4]
 */
import { parseArgs } from "node:util";
import { V8_FLAGS_ARG } from "../lib/cli/v8_flags.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    concurrency: { type: "string", default: "16" },
    "phase-s": { type: "string", default: "4" },
  },
});
const CONCURRENCY = Number(values.concurrency);
const PHASE_MS = Number(values["phase-s"]) * 1000;
const here = new URL(".", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function spawnReady(args: string[], ready: RegExp): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!ready.test(seen)) {
    const { done, value } = await lines.read();
    if (done) throw new Error(`process exited before it was ready: ${args.join(" ")}`);
    seen += value;
  }
  // Keep draining so the child never blocks on a full pipe.
  (async () => {
    while (!(await lines.read()).done);
  })();
  return child;
}

function upstream(port: number, name: string): Promise<Deno.ChildProcess> {
  return spawnReady(["run", "-A", `${here}drill_upstream.ts`, String(port), name], /ready/);
}

interface Sample {
  at: number;
  ms: number;
  status: number;
  by: string;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

const portA = freePort(), portB = freePort(), gwPort = freePort(), adminPort = freePort();
const dir = await Deno.makeTempDir({ prefix: "gw-drill-" });
const configFile = `${dir}/gateway.yaml`;
await Deno.writeTextFile(
  configFile,
  `listeners: [ { name: public, host: 127.0.0.1, port: ${gwPort} } ]
admin: { host: 127.0.0.1, port: ${adminPort} }
upstreams:
  app:
    targets: [ { url: "http://127.0.0.1:${portA}" }, { url: "http://127.0.0.1:${portB}" } ]
    timeout: { connect_ms: 250, first_byte_ms: 2000 }
    retries: { attempts: 2, on: [connect_error, reset, 502, 503, 504], backoff_ms: 5 }
    outlier_detection: { consecutive_failures: 3, base_ejection_s: 2, max_ejection_s: 30 }
    health_check: { path: /health, interval_s: 0.5, timeout_ms: 250, healthy_threshold: 2, unhealthy_threshold: 2 }
routes:
  - { name: drill, match: { path: / }, upstream: app }
`,
);

let a: Deno.ChildProcess | null = null;
let b: Deno.ChildProcess | null = null;
let gw: Deno.ChildProcess | null = null;
const events: string[] = [];
try {
  [a, b] = await Promise.all([upstream(portA, "a"), upstream(portB, "b")]);
  gw = new Deno.Command(Deno.execPath(), {
    // One isolate: one breaker and one health checker, whose events the drill times.
    args: [
      "run",
      "-A",
      V8_FLAGS_ARG,
      `${here}../main.ts`,
      "--config",
      configFile,
      "--log-level",
      "info",
      "--workers",
      "1",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const t0Ref = { t0: 0 };
  (async () => {
    const reader = gw!.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (/target|circuit/.test(line) && t0Ref.t0 > 0) {
          const msg = JSON.parse(line).msg;
          events.push(`${((performance.now() - t0Ref.t0) / 1000).toFixed(2)} s  ${msg}`);
        }
      }
    }
  })();
  const base = `http://127.0.0.1:${gwPort}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${base}/warmup`);
      await r.body?.cancel();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const samples: Sample[] = [];
  const t0 = performance.now();
  t0Ref.t0 = t0;
  const end = t0 + 3 * PHASE_MS;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        const res = await fetch(`${base}/work`);
        const by = await res.text();
        samples.push({ at: started - t0, ms: performance.now() - started, status: res.status, by });
      } catch {
        samples.push({ at: started - t0, ms: performance.now() - started, status: 0, by: "" });
      }
    }
  });

  const targetB = async () => {
    const view = await (await fetch(`http://127.0.0.1:${adminPort}/upstreams/app`)).json();
    return view.targets[1] as { available: boolean; healthy: boolean };
  };
  const waitFor = async (cond: (t: { available: boolean }) => boolean, from: number) => {
    while (performance.now() < end) {
      if (cond(await targetB())) return performance.now() - from;
      await new Promise((r) => setTimeout(r, 20));
    }
    return NaN;
  };

  await new Promise((r) => setTimeout(r, PHASE_MS));
  const killedAt = performance.now();
  b.kill("SIGKILL");
  await b.status;
  b = null;
  const detectMs = await waitFor((t) => !t.available, killedAt);
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + 2 * PHASE_MS - performance.now())));
  const restoredAt = performance.now();
  b = await upstream(portB, "b");
  const readyMs = performance.now() - restoredAt;
  const readmitMs = await waitFor((t) => t.available, restoredAt);
  await Promise.all(workers);

  const firstTrafficB = samples.find((s) => s.by === "b" && s.at >= restoredAt - t0);
  const phases: [string, number, number][] = [
    ["steady (both up)", 0, killedAt - t0],
    ["b killed", killedAt - t0, restoredAt - t0],
    ["b restored", restoredAt - t0, 3 * PHASE_MS],
  ];
  console.log(
    `\nFailure drill (gateway --workers 1): ${CONCURRENCY} concurrent clients, ${
      (3 * PHASE_MS / 1000).toFixed(0)
    } s, target b killed (SIGKILL) at ${((killedAt - t0) / 1000).toFixed(2)} s and restarted at ${
      ((restoredAt - t0) / 1000).toFixed(2)
    } s\n`,
  );
  console.log("| phase | requests | req/s | client errors | served by a / b | p50 ms | p99 ms |");
  console.log("|---|---|---|---|---|---|---|");
  for (const [name, from, to] of phases) {
    const ss = samples.filter((s) => s.at >= from && s.at < to);
    const errors = ss.filter((s) => s.status !== 200);
    const ms = ss.map((s) => s.ms);
    console.log(
      `| ${name} | ${ss.length} | ${
        (ss.length / ((to - from) / 1000)).toFixed(0)
      } | ${errors.length}${
        errors.length ? ` (${[...new Set(errors.map((e) => e.status))].join(", ")})` : ""
      } | ${ss.filter((s) => s.by === "a").length} / ${ss.filter((s) => s.by === "b").length} | ${
        pct(ms, 0.5).toFixed(1)
      } | ${pct(ms, 0.99).toFixed(1)} |`,
    );
  }
  console.log(`\ntime until the gateway took b out of the balancer: ${detectMs.toFixed(0)} ms`);
  console.log(`b restarted and listening after ${readyMs.toFixed(0)} ms`);
  console.log(
    `time from restart until b was readmitted: ${readmitMs.toFixed(0)} ms (${
      (readmitMs - readyMs).toFixed(0)
    } ms after it listened again)`,
  );
  console.log(
    `first request served by b after the restart: ${
      firstTrafficB ? `${(firstTrafficB.at - (restoredAt - t0)).toFixed(0)} ms after it` : "none"
    }`,
  );
  console.log(`\ngateway events:\n  ${events.join("\n  ")}`);
  const total = samples.filter((s) => s.status !== 200).length;
  console.log(`\nclient errors in total: ${total} of ${samples.length} requests`);
} finally {
  for (const p of [gw, a, b]) {
    if (!p) continue;
    try {
      p.kill("SIGTERM");
    } catch {
      // already gone
    }
    await p.status;
  }
  await Deno.remove(dir, { recursive: true });
}
