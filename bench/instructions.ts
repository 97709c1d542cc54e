/**
 * `deno task bench:instructions`: the gateway's instructions per request,
 * counted by valgrind's callgrind on the serving thread (user space only: the
 * kernel's half of a request is not counted). Unlike req/s or CPU time, the
 * count does not move with whatever else the host runs, so it shows a change
 * of 1-2 % that timing on a shared VM cannot (README, Performance; bench/NOTES.md). Compare
 * two commits by running it in a checkout of each.
 *
 *   deno task bench:instructions [--config routing-only] [--warm 150] [--seconds 30] [--samples 3]
 *
 * `--config` picks the first configuration of bench/configs.ts whose name
 * contains it (one isolate; not the Redis one). The gateway runs under
 * callgrind about 50 times slower, so it is warmed up (`--warm` seconds of
 * load, until its hot code is compiled) before the counters are zeroed; each
 * sample then counts `--seconds` of `wrk -t1 -c8`. Needs valgrind and wrk
 * (`apt-get install valgrind wrk`).
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { configs, gatewayYaml } from "./configs.ts";
import { V8_FLAGS_ARG } from "../lib/cli/v8_flags.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const { values: opts } = parseArgs({
  args: Deno.args,
  options: {
    config: { type: "string", default: "routing-only" },
    warm: { type: "string", default: "150" },
    seconds: { type: "string", default: "30" },
    samples: { type: "string", default: "3" },
  },
});

/** The answer nginx gives in `deno task bench`; the upstream's own work is not counted. */
const UPSTREAM_BODY = '{"service":"users","id":42,"name":"Ada"}';

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Requests wrk completed in `seconds` against `url`. */
async function load(url: string, seconds: number, header?: string): Promise<number> {
  const args = ["-t1", "-c8", `-d${seconds}s`, ...(header ? ["-H", header] : []), url];
  const out = await run("wrk", args);
  const m = /(\d+) requests in/.exec(out);
  if (!m) throw new Error(`wrk printed no request count:\n${out}`);
  return Number(m[1]);
}

/** Instructions of the serving thread (callgrind's thread 1) in the dump just written. */
async function mainThreadInstructions(dir: string): Promise<number> {
  let total = NaN;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith("-01")) continue;
    const text = await Deno.readTextFile(join(dir, e.name));
    total = Number(/^summary: (\d+)/m.exec(text)?.[1]);
  }
  for await (const e of Deno.readDir(dir)) {
    if (/\.\d+-\d+$/.test(e.name)) await Deno.remove(join(dir, e.name));
  }
  return total;
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gw-instructions-" });
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(UPSTREAM_BODY, { headers: { "content-type": "application/json" } }),
  );
  let child: Deno.ChildProcess | null = null;
  try {
    const all = await configs(dir, "redis://127.0.0.1:1");
    const c = all.find((c) => c.name.includes(opts.config) && !c.body.includes("kind: redis"));
    if (!c) throw new Error(`no configuration named like "${opts.config}" without Redis`);
    const [port, admin] = [freePort(), freePort()];
    const file = join(dir, "gateway.yaml");
    const upstreamUrl = `http://127.0.0.1:${upstream.addr.port}`;
    await Deno.writeTextFile(file, gatewayYaml(port, admin, upstreamUrl, c.body));
    child = new Deno.Command("valgrind", {
      args: [
        "--tool=callgrind",
        `--callgrind-out-file=${dir}/cg.%p`,
        "--dump-instr=no",
        "--collect-jumps=no",
        "--separate-threads=yes",
        Deno.execPath(),
        "run",
        "-A",
        V8_FLAGS_ARG,
        join(ROOT, "main.ts"),
        "run",
        "--config",
        file,
        "--workers",
        "1",
        "--log-level",
        "warn",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const url = `http://127.0.0.1:${port}${c.path ?? "/api/users/42"}`;
    for (let i = 0;; i++) {
      if (i === 300) throw new Error("the gateway did not start under valgrind in 150 s");
      try {
        const r = await fetch(`http://127.0.0.1:${admin}/readyz`);
        await r.body?.cancel();
        if (r.ok) break;
      } catch {
        // starting
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(`${c.name}: warming up for ${opts.warm} s under callgrind`);
    await load(url, Number(opts.warm), c.header);
    const perRequest: number[] = [];
    for (let i = 0; i < Number(opts.samples); i++) {
      await run("callgrind_control", ["-z", String(child.pid)]);
      const requests = await load(url, Number(opts.seconds), c.header);
      await run("callgrind_control", ["-d", String(child.pid)]);
      const n = (await mainThreadInstructions(dir)) / requests;
      perRequest.push(n);
      console.log(`sample ${i + 1}: ${requests} requests, ${Math.round(n)} instructions each`);
    }
    const mean = perRequest.reduce((a, b) => a + b, 0) / perRequest.length;
    const [lo, hi] = [Math.min(...perRequest), Math.max(...perRequest)];
    console.log(
      `${c.name}, one isolate: ${(mean / 1000).toFixed(1)}k instructions per request ` +
        `(serving thread, user space; samples ${(lo / 1000).toFixed(1)}-${
          (hi / 1000).toFixed(1)
        }k)`,
    );
  } finally {
    try {
      child?.kill("SIGKILL");
      await child?.status;
    } catch {
      // gone already
    }
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
