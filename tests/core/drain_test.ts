/** SIGTERM: stop accepting, finish what is in flight, exit 0. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { spawnProxyGateway } from "../helpers/process.ts";
import { rawRequest } from "../helpers/raw.ts";
import { assertEchoes } from "../helpers/websocket.ts";
import { Http1Server } from "../../lib/server/http1/server.ts";

Deno.test("drain: a slow request started before SIGTERM completes; the process exits 0", async () => {
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 1500));
    return new Response("done");
  });
  const p = await spawnProxyGateway(up.url, "server: { drain_timeout_s: 10 }");
  const gw = p.gw;
  const port = new URL(p.base).port;
  try {
    const slow = fetch(`http://127.0.0.1:${port}/slow`).then(async (r) => ({
      status: r.status,
      body: await r.text(),
    }));
    while (up.received.length === 0) await new Promise((r) => setTimeout(r, 10));
    const exited = gw.stop("SIGTERM");
    const answered = await slow;
    assertEquals(answered, { status: 200, body: "done" });
    assertEquals(await exited, 0);
    // Nothing listens any more.
    const after = await fetch(`http://127.0.0.1:${port}/`).then(() => "answered", () => "refused");
    assertEquals(after, "refused");
    assertOk(gw.log.some((l) => l.includes('"draining"')), gw.log.join("\n"));
  } finally {
    await p.close();
    await up.close();
  }
});

Deno.test("drain: every caller of the HTTP/1.1 server's shutdown waits for the same busy connections", async () => {
  const release = Promise.withResolvers<void>();
  const entered = Promise.withResolvers<void>();
  const server = new Http1Server({
    hostname: "127.0.0.1",
    port: 0,
    timeouts: () => ({ headerMs: 5_000, idleMs: 5_000, sendMs: 5_000 }),
  }, async () => {
    entered.resolve();
    await release.promise;
    return new Response("late");
  });
  const answer = fetch(`http://127.0.0.1:${server.addr.port}/`).then((r) => r.text());
  await entered.promise;
  const settled: string[] = [];
  const first = server.shutdown().then(() => settled.push("first"));
  const second = server.shutdown().then(() => settled.push("second"));
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(settled, [], "both wait while the request runs");
  release.resolve();
  assertEquals(await answer, "late");
  // Until 2026-12-07 the second call replaced the first one's wait, which never ended.
  await Promise.all([first, second]);
  assertEquals(settled.sort(), ["first", "second"]);
});

for (const workers of [1, 2]) {
  Deno.test(`drain: with drain_delay_s the listeners serve on, each answer closing its connection, while /readyz is 503 (--workers ${workers})`, async () => {
    const up = startUpstream((req) => {
      if (req.headers.get("upgrade") !== "websocket") return new Response("ok");
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    });
    const p = await spawnProxyGateway(
      up.url,
      "server: { drain_delay_s: 3, drain_timeout_s: 10 }",
      workers,
    );
    const gw = p.gw;
    try {
      const before = await rawRequest(p.base, ["GET /before HTTP/1.1", "Host: gw"], "", 500);
      assertEquals(before.status, 200);
      assertEquals(before.headers.get("connection"), null, "kept open before the stop");

      const exited = gw.stop("SIGTERM");
      let ready = await fetch(`${p.admin}/readyz`);
      while (ready.status === 200) {
        await ready.body?.cancel();
        await new Promise((r) => setTimeout(r, 20));
        ready = await fetch(`${p.admin}/readyz`);
      }
      assertEquals(ready.status, 503);
      assertEquals((await ready.json()).status, "draining");

      // A balancer that has not noticed yet still gets answers, each on a closing connection.
      const during = await rawRequest(p.base, ["GET /during HTTP/1.1", "Host: gw"]);
      assertEquals(during.status, 200);
      assertEquals(during.headers.get("connection"), "close");
      assertOk(up.received.some((r) => r.url === "/during"), "proxied during the delay");
      // A WebSocket handshake still switches (the tunnel writes the 101's Connection field itself).
      const ws = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(p.base).port) });
      try {
        await assertEchoes(ws);
      } finally {
        ws.close();
      }

      assertEquals(await exited, 0);
      const after = await fetch(`${p.base}/`).then(() => "answered", () => "refused");
      assertEquals(after, "refused");
      assertOk(gw.log.some((l) => l.includes('"leaving')), gw.log.join("\n"));
    } finally {
      await p.close();
      await up.close();
    }
  });
}
