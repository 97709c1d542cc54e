import { assertEquals, assertOk } from "../helpers/assert.ts";
import { MemoryCache } from "../../lib/cache/memory_store.ts";
import type { Fill } from "../../lib/cache/fills.ts";
import { type CachedResponse, decodeEntry, encodeEntry, entrySize } from "../../lib/cache/entry.ts";

function entry(
  path: string,
  bodyBytes: number,
  freshUntil = 1_000,
  staleUntil = freshUntil,
): CachedResponse {
  return {
    status: 200,
    headers: [["content-type", "text/plain"]],
    body: new Uint8Array(bodyBytes),
    date: 0,
    freshUntil,
    staleUntil,
    path,
  };
}

/** A fill of the URI `host` + `uri`. */
const fill = (uri: string): Fill => ({
  uri: `api.test${uri}`,
  path: uri,
  startedAt: 0,
  outdated: false,
});

Deno.test("MemoryCache stays within its byte budget, evicting the least recently used", async () => {
  const one = entrySize("/a", "api.test/a", entry("/a", 1000));
  const cache = new MemoryCache(one * 3);
  cache.set("/a", entry("/a", 1000), fill("/a"));
  cache.set("/b", entry("/b", 1000), fill("/b"));
  cache.set("/c", entry("/c", 1000), fill("/c"));
  assertOk(await cache.get("/a", 0)); // /a is now the most recent
  cache.set("/d", entry("/d", 1000), fill("/d"));
  assertEquals(await cache.get("/b", 0), null);
  assertOk(await cache.get("/a", 0));
  assertOk(await cache.get("/c", 0));
  assertOk(await cache.get("/d", 0));
  assertOk(cache.bytes <= cache.capacity);
  assertEquals(cache.entries, 3);

  cache.resize(one);
  assertEquals(cache.entries, 1);
  assertOk(await cache.get("/d", 0));
  cache.set("/huge", entry("/huge", one * 2), fill("/huge"));
  assertEquals(await cache.get("/huge", 0), null);
  assertEquals(cache.entries, 1);
});

Deno.test("MemoryCache drops entries past their stale window and purges by path prefix", async () => {
  const cache = new MemoryCache(1 << 20);
  cache.set("k1", entry("/api/products/1", 10, 100, 200), fill("/api/products/1"));
  cache.set("k2", entry("/api/products/2", 10, 100, 200), fill("/api/products/2"));
  cache.set("k3", entry("/api/productsX", 10, 100, 200), fill("/api/productsX"));
  cache.set("k4", entry("/api/orders", 10, 100, 200), fill("/api/orders"));
  assertOk(await cache.get("k1", 150)); // stale, still usable for stale-if-error
  assertEquals(await cache.get("k1", 200), null);
  assertEquals(cache.entries, 3);
  assertEquals(await cache.purge("/api/products"), 2);
  assertEquals(cache.entries, 1);
  const before = cache.bytes;
  cache.set("k4", entry("/api/orders", 10, 100, 200), fill("/api/orders"));
  assertEquals(cache.bytes, before);
});

Deno.test("MemoryCache.invalidate() drops every key stored under a URI, whatever route stored it", async () => {
  const cache = new MemoryCache(1 << 20);
  cache.set("/items/1\nread~1\nhttp://api.test\n", entry("/items/1", 10), fill("/items/1"));
  cache.set("/items/1\nread~1\nhttp://api.test\n\nfr", entry("/items/1", 10), fill("/items/1"));
  cache.set("/items/1\nmobile~2\nhttps://api.test\n", entry("/items/1", 10), fill("/items/1"));
  const other = "/items/2\nread~1\nhttp://api.test\n";
  cache.set(other, entry("/items/2", 10), fill("/items/2"));
  await cache.invalidate("api.test/items/1");
  assertEquals(cache.entries, 1);
  assertEquals(cache.bytes, entrySize(other, "api.test/items/2", entry("/items/2", 10)));
  assertOk(await cache.get(other, 0));
  await cache.invalidate("api.test/items/2");
  assertEquals([cache.entries, cache.bytes], [0, 0]);
});

Deno.test("encodeEntry() and decodeEntry() round-trip; foreign bytes decode to null", () => {
  const e = {
    ...entry("/p", 0),
    body: new TextEncoder().encode("héllo"),
    headers: [["a", "b"]] as [string, string][],
  };
  const back = decodeEntry(encodeEntry(e))!;
  assertEquals({ ...back, body: [...back.body] }, { ...e, body: [...e.body] });
  assertEquals(decodeEntry(new Uint8Array([1, 2])), null);
  assertEquals(decodeEntry(new TextEncoder().encode("plain string value")), null);
});
