/**
 * The invalidation marks the workers of a cluster share, as two workers see
 * them: two `InvalidationMarks` over one buffer, each under its own memory
 * cache and fills, the way `worker_main.ts` builds them.
 */
import { assertEquals, assertOk, assertThrows } from "../helpers/assert.ts";
import { InvalidationMarks } from "../../lib/cache/invalidation_marks.ts";
import { CacheStores } from "../../lib/cache/stores.ts";
import type { CachedResponse } from "../../lib/cache/entry.ts";

const entry = (path: string): CachedResponse => ({
  status: 200,
  headers: [],
  body: new Uint8Array(8),
  date: 0,
  freshUntil: 10_000,
  staleUntil: 10_000,
  path,
});

/** Two workers' caches over one shared buffer. */
function twoWorkers() {
  const a = new InvalidationMarks();
  const b = new InvalidationMarks(a.buffer);
  return { a: new CacheStores(a), b: new CacheStores(b) };
}

Deno.test("InvalidationMarks: a mark made through one view is seen through another, and only goes forward", () => {
  const a = new InvalidationMarks();
  const b = new InvalidationMarks(a.buffer);
  assertEquals(b.changedSince("h/x", 1), false);
  a.mark("h/x", 100);
  assertEquals([b.changedSince("h/x", 100), b.changedSince("h/x", 101)], [true, false]);
  // A clock that stepped back does not undo a later mark.
  b.mark("h/x", 50);
  assertEquals(a.changedSince("h/x", 100), true);
  a.mark("h/x", 200);
  assertEquals(b.changedSince("h/x", 150), true);
  assertEquals(b.changedSince("h/y", 1), false);
  assertThrows(() => new InvalidationMarks(new SharedArrayBuffer(64)), RangeError);
});

Deno.test("InvalidationMarks: one worker's write drops the entry another worker holds", async () => {
  const { a, b } = twoWorkers();
  const fill = b.fills.begin("h/items/1", "/items/1", 1_000);
  assertEquals(b.fills.isOutdated(fill), false);
  b.memory.set("k", entry("/items/1"), fill);
  b.fills.end(fill);
  assertOk(await b.memory.get("k", 1_500));

  // Worker a proxies the write: b's entry, filled before it, is gone when next read.
  a.fills.outdate("h/items/1", 2_000);
  await a.memory.invalidate("h/items/1");
  assertEquals(await b.memory.get("k", 2_001), null);
  assertEquals(b.memory.entries, 0);

  // A fill that began after the write stores and is served.
  const after = b.fills.begin("h/items/1", "/items/1", 2_001);
  assertEquals(b.fills.isOutdated(after), false);
  b.memory.set("k", entry("/items/1"), after);
  assertOk(await b.memory.get("k", 2_002));
});

Deno.test("InvalidationMarks: a fill in flight in one worker is outdated by a write through another", () => {
  const { a, b } = twoWorkers();
  const fill = b.fills.begin("h/items/2", "/items/2", 1_000);
  a.fills.outdate("h/items/2", 1_000);
  // Same millisecond: the answer may predate the write, so it is not kept.
  assertEquals(b.fills.isOutdated(fill), true);
  const other = b.fills.begin("h/items/3", "/items/3", 1_000);
  assertEquals(b.fills.isOutdated(other), false);
});

Deno.test("InvalidationMarks: a gateway of one isolate has none, and its own invalidations are exact", async () => {
  const one = new CacheStores();
  const fill = one.fills.begin("h/a", "/a", 1_000);
  one.memory.set("k", entry("/a"), fill);
  one.fills.end(fill);
  one.fills.outdate("h/b", 5_000);
  assertOk(await one.memory.get("k", 5_001));
});
