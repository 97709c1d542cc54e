/**
 * The memory store under a flood of distinct client keys, through the gateway:
 * it holds at most `store.memory.max_keys` keys, and a regular client keeps its
 * counter (the flood evicts idle keys, not active ones). The full-scale run
 * (1,000,000 keys, RSS measured) is in bench/ratelimit.ts.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import type { MemoryLimiterStore } from "../../lib/store/memory_limiter.ts";
import { limitedConfig, routeR } from "./helpers.ts";

Deno.test("a flood of distinct keys stays under store.memory.max_keys", async () => {
  const up = startUpstream(() => new Response("ok"));
  const g = await startGateway(baseConfig(limitedConfig(
    up.url,
    routeR(
      `rate_limit: { algorithm: token_bucket, rate: 1, per: 1h, burst: 3, key: "header:X-Client" }`,
    ),
    "store: { kind: memory, memory: { max_keys: 500 } }",
  )));
  const store = g.gw.deps.localLimiter as MemoryLimiterStore;
  const status = async (client: string) => {
    const res = await fetch(`${g.url()}/r`, { headers: { "x-client": client } });
    await res.body?.cancel();
    return res.status;
  };
  try {
    assertEquals([await status("regular"), await status("regular")], [200, 200]);
    let largest = 0;
    for (let batch = 0; batch < 100; batch++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => status(`flood-${batch}-${i}`)));
      // The regular client keeps coming back, so it stays among the recently used.
      if (batch % 4 === 0) await status("regular");
      largest = Math.max(largest, store.size);
    }
    assertOk(largest <= 500, `held ${largest} keys`);
    assertOk(store.evicted >= 4000, `evicted ${store.evicted}`);
    // 2 + 25 requests against a burst of 3: its bucket is still empty, not reset by eviction.
    assertEquals(await status("regular"), 429);
  } finally {
    await g.close();
    await up.close();
  }
});
