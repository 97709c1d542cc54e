import { assertEquals } from "./helpers/assert.ts";
import { startUpstream } from "./helpers/upstream.ts";
import { proxyAllConfig, startGateway } from "./helpers/gateway.ts";

Deno.test("helpers: a gateway proxies to a test upstream", async () => {
  const up = startUpstream();
  const g = await startGateway(proxyAllConfig(up.url));
  try {
    const res = await fetch(`${g.url()}/hello?x=1`);
    const body = await res.json();
    assertEquals(res.status, 200);
    assertEquals(body.url, "/hello?x=1");
    const h = await fetch(`${g.admin}/healthz`);
    assertEquals(h.status, 200);
    await h.body?.cancel();
  } finally {
    await g.close();
    await up.close();
  }
});
