/** The bench's tables: medians and paired ratios over rounds, rendered as Markdown. */
import type { WrkRun } from "./wrk.ts";

/** The reference every ratio is paired with. */
export const BARE = "deno-bare";
/**
 * Issue 11 also asks for 2.5x this anchor. Taken as the quotient of two ratios
 * to the bare proxy, that figure carries the noise of both; so the routing-only
 * rows (the same job @fastify/http-proxy is given) are also paired with it directly.
 */
export const FASTIFY = "fastify-proxy";

/** One measured run of a target. */
export interface Row extends WrkRun {
  name: string;
  /** CPU time of the target's processes per request, in microseconds (none for `direct`). */
  cpuUs?: number;
  /** Gateway RSS after start and one request, and its peak during its warm-up run under load. */
  rssIdleMb?: number;
  rssMb?: number;
}

/** A target's req/s, p99 and CPU per request over those of the reference run beside it. */
export interface Ratios {
  rps: number;
  p99: number;
  cpu?: number;
}

/** One target's run and the reference's run beside it. */
export interface Pair {
  round: number;
  target: Row;
  ref: Row;
}

/** `min-max` of each minute's one-second samples. */
export function byMinute(samples: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < samples.length; i += 60) {
    const minute = samples.slice(i, i + 60);
    out.push(`${Math.min(...minute).toFixed(0)}-${Math.max(...minute).toFixed(0)}`);
  }
  return out;
}

/** The median element by `key` (the lower middle for an even count). */
export function median<T>(xs: T[], key: (x: T) => number): T {
  const sorted = [...xs].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Every measured pair, so a reader sees the spread the medians summarise. */
export function renderPairs(pairs: Pair[], ref: string): string {
  if (pairs.length === 0) return "";
  const lines = [
    "",
    `Every pair with ${ref}, in the order run:`,
    "",
    `| round | target | req/s | p99 ms | CPU us/req | ${ref} req/s | ${ref} p99 ms | ${ref} CPU us/req | req/s ratio | p99 ratio |`,
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { round, target: t, ref: b } of pairs) {
    lines.push(
      `| ${round} | ${t.name} | ${t.rps.toFixed(0)} | ${t.p99.toFixed(2)} | ${us(t.cpuUs)} | ${
        b.rps.toFixed(0)
      } | ${b.p99.toFixed(2)} | ${us(b.cpuUs)} | ${(t.rps / b.rps).toFixed(2)}x | ${
        (t.p99 / b.p99).toFixed(2)
      }x |`,
    );
  }
  return lines.join("\n") + "\n";
}

/** The routing-only rows against @fastify/http-proxy run beside them: median and range over rounds. */
export function renderVsFastify(vsFastify: Map<string, Ratios[]>): string {
  if (vsFastify.size === 0) return "";
  const lines = [
    "",
    "",
    `| target | req/s vs ${FASTIFY}, paired | rounds | p99 vs ${FASTIFY}, paired | ${FASTIFY}'s CPU per request over the target's, paired | rounds |`,
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const [name, rs] of vsFastify) {
    const rps = rs.map((r) => r.rps);
    // How many times the gateway's CPU per request fastify spends: the same sense as req/s.
    const cheaper = rs.flatMap((r) => r.cpu === undefined ? [] : [1 / r.cpu]);
    lines.push(
      `| ${name} | ${median(rs, (r) => r.rps).rps.toFixed(2)}x | ${range(rps)} | ${
        median(rs, (r) => r.p99).p99.toFixed(2)
      }x | ${cheaper.length ? `${median(cheaper, (c) => c).toFixed(2)}x` : "-"} | ${
        cheaper.length ? range(cheaper) : "-"
      } |`,
    );
  }
  return lines.join("\n");
}

/** `min-max` of `xs` as ratios. */
function range(xs: number[]): string {
  return `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}x`;
}

function us(n: number | undefined): string {
  return n === undefined ? "-" : n.toFixed(1);
}

/** One row per target (its median run by req/s); CPU per request is the median over its runs. */
export function render(
  rows: Row[],
  runs: Map<string, Row[]>,
  ratios: Map<string, Ratios[]>,
): string {
  const nginx = ratios.get("nginx");
  const x = (n: number | undefined) => (n === undefined ? "-" : `${n.toFixed(2)}x`);
  const mb = (n: number | undefined) => (n !== undefined ? n.toFixed(0) : "-");
  const lines = [
    "| target | req/s | p50 ms | p99 ms | CPU us/req | req/s vs deno-bare | req/s vs nginx | p99 vs deno-bare | CPU/req vs deno-bare | RSS idle MB | RSS load MB | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const own = r.name === BARE ? [{ rps: 1, p99: 1 }] : ratios.get(r.name);
    const vsBare = own && median(own, (o) => o.rps).rps;
    // Both ratios are to the bare run paired with each: their quotient cancels the drift too.
    const vsNginx = vsBare && nginx && vsBare / median(nginx, (o) => o.rps).rps;
    const cpus = (runs.get(r.name) ?? []).flatMap((run) => run.cpuUs ?? []);
    const cpuRatios = (own ?? []).flatMap((o) => o.cpu ?? []);
    lines.push(
      `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${
        us(cpus.length ? median(cpus, (c) => c) : undefined)
      } | ${x(vsBare)} | ${x(vsNginx)} | ${x(own && median(own, (o) => o.p99).p99)} | ${
        x(cpuRatios.length ? median(cpuRatios, (c) => c) : undefined)
      } | ${mb(r.rssIdleMb)} | ${mb(r.rssMb)} | ${r.errors || "-"} |`,
    );
  }
  return lines.join("\n");
}
