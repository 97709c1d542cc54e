/**
 * `store.kind: memory` under `--workers N`: the shared table every worker
 * decides in, the main thread's side for what does not fit it, and real
 * worker isolates deciding the same keys at once.
 */
import { assertEquals, assertOk, assertThrows } from "../helpers/assert.ts";
import type { AlgorithmSpec } from "../../lib/ratelimit/algorithms/index.ts";
import { StoreUnavailableError } from "../../lib/store/limiter_store.ts";
import { decideAtomically } from "../../lib/store/state_home.ts";
import { LimiterTable, MAX_NAME } from "../../lib/cluster/limiter_table.ts";
import { RpcHost, WorkerRpc } from "../../lib/cluster/rpc.ts";
import {
  LIMITER_SERVICE,
  SharedLimiterHost,
  WorkerLimiterStore,
} from "../../lib/cluster/shared_limiter.ts";
import { assertMemoryStoreVerdicts, storedLimit as limit } from "../ratelimit/helpers.ts";
import type { TableWorkerTask } from "./table_worker.ts";

const perDay = (n: number): AlgorithmSpec => ({
  kind: "fixed_window",
  limit: n,
  window: { every: 86_400_000 },
});

/** A main-thread host and one worker's store, wired through the real RPC classes in-process. */
function cluster(maxKeys?: number, clock?: () => number) {
  const tables: SharedArrayBuffer[] = [];
  const host = new SharedLimiterHost((b) => tables.push(b), maxKeys, clock);
  const rpcHost = new RpcHost();
  rpcHost.register(LIMITER_SERVICE, host.service());
  const rpc = new WorkerRpc();
  let messages = 0;
  rpc.attach((msg) => {
    if (msg.type !== "rpc") return;
    messages++;
    void rpcHost.handle(msg.calls).then((r) => rpc.settle(r.results));
  });
  const worker = new WorkerLimiterStore(rpc, new LimiterTable(host.table.buffer), 1);
  return { host, worker, tables, messages: () => messages };
}

Deno.test("a worker's shared store gives the memory store's verdicts, alone and beside a tight limit", async () => {
  const { worker, messages } = cluster();
  const { refused } = await assertMemoryStoreVerdicts(worker, {
    tight: perDay(40),
    keys: 3,
    seed: 7,
  });
  assertOk(refused > 100, `only ${refused} refusals`);
  // Only decisions with a sliding log (the one algorithm without a packed state) crossed over.
  assertEquals(messages(), 2 * 150);
});

Deno.test("what does not fit a slot is decided by the main thread, all-or-nothing with the table", async () => {
  const { host, worker, messages } = cluster();
  const wide = limit("wide", perDay(100));
  const log = limit("log", { kind: "sliding_log", limit: 2, perMs: 60_000 });
  const now = Date.UTC(2026, 5, 1);
  const allowed: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    allowed.push((await worker.decide([wide, log], ["k", "k"], now)).every((v) => v.allowed));
  }
  assertEquals(allowed, [true, true, false, false]);
  // The wide limit's state is in the table, and counted only the two admitted requests.
  assertEquals((await worker.decide([wide], ["k"], now))[0]!.remaining, 97);
  assertEquals(messages(), 4);
  const names = [...host.table.live(now)].map(([name]) => name);
  assertEquals(names, ["wide\u0000k"]);

  // Keys too long for a slot, or not Latin-1, are counted exactly by the main thread.
  const long = "x".repeat(MAX_NAME);
  for (const key of [long, "ключ"]) {
    const counts = [];
    for (let i = 0; i < 3; i++) {
      counts.push((await worker.decide([wide], [key], now))[0]!.remaining);
    }
    assertEquals(counts, [99, 98, 97], key);
  }
  assertEquals(messages(), 10);
  assertEquals([...host.table.live(now)].length, 1);
});

Deno.test("a full table gives a new key the slot of the state that expires first, or an expired one", () => {
  const table = LimiterTable.create(16);
  assertEquals(table.slots, 16);
  const bucket = limit("b", { kind: "token_bucket", rate: 1, perMs: 1000, burst: 100 });
  const decide = (key: string, cost: number, now: number) => {
    assertOk(table.lock(1));
    try {
      return decideAtomically(table, [{ ...bucket, cost }], [key], now)[0]!;
    } finally {
      table.unlock();
    }
  };
  // k0 refills in 1 s, k1 in 2 s, ... k15 in 16 s.
  for (let i = 0; i < 16; i++) decide(`k${i}`, i + 1, 0);
  const live = (now: number) => [...table.live(now)].map(([n]) => n.split("\u0000")[1]).sort();
  assertEquals(live(0).length, 16);

  decide("x", 10, 500);
  assertEquals(live(500), [...Array.from({ length: 15 }, (_, i) => `k${i + 1}`), "x"].sort());
  // k1 has refilled by 2.5 s: its slot is free again, and no live key is dropped.
  assertEquals(decide("y", 1, 2500).remaining, 99);
  assertEquals(live(2500), [...Array.from({ length: 14 }, (_, i) => `k${i + 2}`), "x", "y"].sort());
  // A key that was dropped starts over; a kept one kept its count.
  assertEquals(decide("k0", 1, 2500).remaining, 99);
  assertEquals(decide("k15", 1, 2500).remaining, 100 - 16 + 2 - 1);
});

Deno.test("a new max_keys replaces the table, keeps the live states, and routes through the main thread meanwhile", async () => {
  const now = Date.UTC(2026, 5, 1);
  const { host, worker, tables, messages } = cluster(16, () => now);
  const day = limit("d", perDay(10));
  for (let i = 0; i < 3; i++) await worker.decide([day], ["k"], now);
  const old = host.table;

  host.configure({ maxKeys: 1000 });
  assertEquals(tables.length, 1);
  assertOk(old.moved);
  assertEquals(host.table.slots, 1024);
  // The worker still maps the old table: its decision goes to the main thread, on the new one.
  assertEquals((await worker.decide([day], ["k"], now))[0]!.remaining, 6);
  assertEquals(messages(), 1);
  worker.useTable(new LimiterTable(tables[0]!));
  assertEquals((await worker.decide([day], ["k"], now))[0]!.remaining, 5);
  assertEquals(messages(), 1);

  // The same size again changes nothing.
  host.configure({ maxKeys: 1000 });
  assertEquals(tables.length, 1);
});

Deno.test("a lock held past the wait bound fails the decision; the main thread frees a dead holder's lock", () => {
  const table = LimiterTable.create(16);
  assertOk(table.lock(1));
  let t = 0;
  const clock = () => (t += 40);
  assertEquals(table.lock(2, clock), false);
  assertEquals(table.releaseIfHeldBy(2), false);
  assertOk(table.releaseIfHeldBy(1));
  assertOk(table.lock(2, clock));
  table.unlock();

  assertOk(table.lock(1));
  const store = new WorkerLimiterStore(new WorkerRpc(), table, 2);
  const day = limit("d", perDay(10));
  assertThrows(() => store.decide([day], ["k"], 0), StoreUnavailableError);
  table.releaseIfHeldBy(1);
  assertEquals((store.decide([day], ["k"], 0) as { remaining: number }[])[0]!.remaining, 9);
});

Deno.test("two worker isolates deciding the same keys at once admit exactly the limits", async () => {
  const table = LimiterTable.create(64);
  const keys = ["a", "b", "c", "d", "e"];
  const barrier = new SharedArrayBuffer(4);
  const task = (owner: number): TableWorkerTask => ({
    buffer: table.buffer,
    owner,
    specs: [perDay(1000), { kind: "token_bucket", rate: 1, perMs: 86_400_000, burst: 700 }],
    keys,
    rounds: 3000,
    now: Date.UTC(2026, 5, 1),
    barrier,
    parties: 2,
  });
  const workers = [1, 2].map(() =>
    new Worker(new URL("./table_worker.ts", import.meta.url), { type: "module" })
  );
  try {
    const results = await Promise.all(workers.map((w, i) => {
      const done = new Promise<Record<string, number>>((resolve, reject) => {
        w.onmessage = (ev) => resolve(ev.data);
        w.onerror = (ev) => reject(new Error(ev.message));
      });
      w.postMessage(task(i + 1));
      return done;
    }));
    for (const key of keys) {
      const both = results.map((r) => r[key] ?? 0);
      assertEquals(both[0]! + both[1]!, 700, `${key}: ${both}`);
    }
    // The fixed window counted only what both limits admitted.
    const main = new WorkerLimiterStore(new WorkerRpc(), table, 3);
    const verdicts = main.decide([limit("l0", perDay(1000))], ["a"], task(3).now);
    assertEquals((verdicts as { remaining: number }[])[0]!.remaining, 1000 - 700 - 1);
  } finally {
    for (const w of workers) w.terminate();
  }
});
