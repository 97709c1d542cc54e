/**
 * workerThreads(): the count of worker isolate threads the cluster compares with
 * its live workers, read from a task folder laid out as Linux's /proc/self/task.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { workerThreads } from "../../lib/cluster/worker_threads.ts";

Deno.test("workerThreads() counts the threads Deno names worker-<id>, and no others", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-tasks-" });
  try {
    const names = ["deno", "worker-1", "tokio-runtime-w", "worker-3", "V8 DefaultWorke"];
    for (const [i, name] of names.entries()) {
      await Deno.mkdir(`${dir}/${100 + i}`);
      await Deno.writeTextFile(`${dir}/${100 + i}/comm`, `${name}\n`);
    }
    // A thread that ended while the folder was read.
    await Deno.mkdir(`${dir}/200`);
    assertEquals(await workerThreads(dir), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workerThreads() is null where threads cannot be listed", async () => {
  assertEquals(await workerThreads("/nonexistent/task"), null);
});

Deno.test("workerThreads() of this process: a worker's thread is counted while it runs", async () => {
  const before = await workerThreads();
  if (before === null) return; // not Linux: nothing to count
  const w = new Worker(
    URL.createObjectURL(new Blob(["postMessage(1)"], { type: "text/javascript" })),
    { type: "module" },
  );
  try {
    await new Promise((r) => (w.onmessage = r));
    assertOk((await workerThreads())! > before);
  } finally {
    w.terminate();
  }
});
