/**
 * A worker isolate for shared_limiter_test.ts: once every party is ready,
 * decides `rounds` requests per key through a `WorkerLimiterStore` on the
 * table it is sent, then reports how many it admitted per key.
 */
/// <reference lib="deno.worker" />
import { LimiterTable } from "../../lib/cluster/limiter_table.ts";
import { WorkerRpc } from "../../lib/cluster/rpc.ts";
import { WorkerLimiterStore } from "../../lib/cluster/shared_limiter.ts";
import { type AlgorithmSpec, compileAlgorithm } from "../../lib/ratelimit/algorithms/index.ts";

export interface TableWorkerTask {
  buffer: SharedArrayBuffer;
  owner: number;
  specs: AlgorithmSpec[];
  keys: string[];
  rounds: number;
  now: number;
  /** One int32: each worker counts itself in, then all start together. */
  barrier: SharedArrayBuffer;
  parties: number;
}

self.onmessage = async (ev: MessageEvent<TableWorkerTask>) => {
  const t = ev.data;
  // Unattached: a decision that needed the main thread would fail, so every one is the table's.
  const store = new WorkerLimiterStore(new WorkerRpc(), new LimiterTable(t.buffer), t.owner);
  const limits = t.specs.map((spec, i) => ({
    id: `l${i}`,
    algorithm: compileAlgorithm(spec),
    cost: 1,
    shadow: false,
  }));
  const admitted: Record<string, number> = {};
  const barrier = new Int32Array(t.barrier);
  Atomics.add(barrier, 0, 1);
  for (let n = Atomics.load(barrier, 0); n < t.parties; n = Atomics.load(barrier, 0)) {
    Atomics.wait(barrier, 0, n, 5);
  }
  for (let r = 0; r < t.rounds; r++) {
    for (const key of t.keys) {
      const verdicts = await store.decide(limits, limits.map(() => key), t.now);
      if (verdicts.every((v) => v.allowed)) admitted[key] = (admitted[key] ?? 0) + 1;
    }
  }
  self.postMessage(admitted);
};
