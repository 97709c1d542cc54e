/** Load from wrk, and what it reports. */

/** One wrk run: req/s, p50 and p99 in milliseconds, requests completed, errors reported. */
export interface WrkRun {
  rps: number;
  p50: number;
  p99: number;
  /** Requests completed in the run. */
  requests: number;
  errors: string;
}

/** Loads `url` with one wrk thread and `connections` connections for `seconds`. */
export async function wrk(
  url: string,
  header: string | undefined,
  seconds: number,
  connections: number,
): Promise<WrkRun> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency"];
  if (header) args.push("-H", header);
  const out = new TextDecoder().decode(
    (await new Deno.Command("wrk", { args: [...args, url], stdout: "piped" }).output()).stdout,
  );
  const ms = (s: string | undefined) => {
    const m = /^([\d.]+)(us|ms|s)$/.exec(s ?? "");
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  const line = (label: string) => out.split("\n").find((l) => l.trim().startsWith(label));
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    p50: ms(line("50%")?.trim().split(/\s+/)[1]),
    p99: ms(line("99%")?.trim().split(/\s+/)[1]),
    errors: out.split("\n").filter((l) => /Non-2xx|Socket errors/.test(l)).map((l) => l.trim())
      .join("; "),
  };
}
