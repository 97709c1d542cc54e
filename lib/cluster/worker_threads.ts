/**
 * Whether a terminated worker isolate really stopped. `Worker.terminate()` of
 * Deno 2.9 does not stop an isolate stuck in synchronous code: its thread keeps
 * running, and its listeners stay open in the `SO_REUSEPORT` group, so the
 * kernel still hands them new connections, which hang (seen on 2.9.6: a worker
 * in `while (true) {}` still spins 4 s after `terminate()`).
 * Deno names each worker's OS thread `worker-<id>`; on Linux the threads of the
 * process are listed in /proc/self/task.
 */

/** OS threads of worker isolates in this process, or null where they cannot be counted. */
export async function workerThreads(taskDir = "/proc/self/task"): Promise<number | null> {
  try {
    let n = 0;
    for await (const task of Deno.readDir(taskDir)) {
      const comm = await Deno.readTextFile(`${taskDir}/${task.name}/comm`).catch(() => "");
      if (comm.startsWith("worker-")) n++;
    }
    return n;
  } catch {
    return null;
  }
}
