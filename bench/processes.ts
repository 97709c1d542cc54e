/** What a bench target's processes use, read from /proc (Linux). */

/** Resident memory of `pid` in MB, or undefined if it is gone. */
export async function rssMb(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]) / 1024;
  } catch {
    return undefined;
  }
}

/** clock_t in /proc is in USER_HZ, 100 on every Linux architecture the bench runs on. */
const USER_HZ = 100;

/**
 * CPU seconds (user and system) used so far by `pid` and every process under
 * it, or undefined if it is gone. Children are read from each thread's
 * `children` list (Linux 3.5 and later).
 */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces): state is the 3rd, utime the 14th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  let seconds = (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  try {
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const children = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`);
      for (const child of children.split(" ").filter((c) => c !== "")) {
        seconds += await cpuSeconds(Number(child)) ?? 0;
      }
    }
  } catch {
    // Exited while being read: what was read stands.
  }
  return seconds;
}

/** Samples the RSS of `pid` every 250 ms until stopped; `stop()` gives the highest. */
export function peakRss(pid: number | undefined): { stop(): Promise<number | undefined> } {
  let peak: number | undefined;
  const sample = async () => {
    const mb = await rssMb(pid);
    if (mb !== undefined) peak = Math.max(peak ?? 0, mb);
  };
  const timer = setInterval(sample, 250);
  return {
    async stop() {
      clearInterval(timer);
      await sample();
      return peak;
    },
  };
}
