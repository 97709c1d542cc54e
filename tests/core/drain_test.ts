/** SIGTERM: stop accepting, finish what is in flight, exit 0. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { closedPort, startUpstream } from "../helpers/upstream.ts";
import { spawnGateway } from "../helpers/process.ts";

Deno.test("drain: a slow request started before SIGTERM completes; the process exits 0", async () => {
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 1500));
    return new Response("done");
  });
  const dir = await Deno.makeTempDir();
  const port = closedPort();
  const admin = closedPort();
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(
    file,
    `
listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${admin} }
server: { drain_timeout_s: 10 }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a }
`,
  );
  const gw = await spawnGateway(file, `http://127.0.0.1:${admin}/readyz`);
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
    await gw.stop("SIGKILL");
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
