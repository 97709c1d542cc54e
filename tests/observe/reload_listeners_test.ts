/**
 * Reloads that change listeners: a listener that cannot open leaves the old
 * one serving; a certificate renewed in place is picked up; a listener that
 * keeps its port takes connections throughout; the admin listener can move
 * on a reload asked for on it.
 */
import { assertEquals, assertMatch, assertOk, within } from "../helpers/assert.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { freePorts } from "../helpers/ports.ts";
import { closeQuietly } from "../../lib/proxy/http1/socket_io.ts";

/** A config with one listener (`listener` is its YAML) and the admin one at `adminPort`. */
function config(listener: string, upstream: string, adminPort = 0): string {
  return `listeners: [ ${listener} ]
admin: { host: 127.0.0.1, port: ${adminPort} }
server: { drain_timeout_s: 5, config_watch: { enabled: false } }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`;
}

/** Whether a TLS handshake with `port` succeeds trusting only `caPem`. */
async function servesCert(port: number, caPem: string): Promise<boolean> {
  try {
    const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts: [caPem] });
    try {
      await conn.handshake();
      return true;
    } finally {
      closeQuietly(conn);
    }
  } catch {
    return false;
  }
}

Deno.test("reload: a TLS listener that cannot open keeps the old one; a certificate renewed in place is served", async () => {
  const up = startUpstream(() => new Response("ok"));
  const certs = await Deno.makeTempDir({ prefix: "gw-reload-tls-" });
  const [port] = freePorts(1);
  try {
    const first = await selfSignedCert(await Deno.makeTempDir({ dir: certs }));
    const second = await selfSignedCert(await Deno.makeTempDir({ dir: certs }));
    const firstPem = await Deno.readTextFile(first.cert);
    const secondPem = await Deno.readTextFile(second.cert);
    const listener = (cert: string) =>
      `{ name: secure, host: 127.0.0.1, port: ${port}, tls: { cert: ${cert}, key: tls.key } }`;
    const g = await startGateway(config(listener("tls.crt"), up.url), {
      files: { "tls.crt": firstPem, "tls.key": await Deno.readTextFile(first.key), "bad.crt": "x" },
    });
    try {
      assertOk(await servesCert(port!, firstPem));
      // A certificate that does not load, on the same port: the old listener keeps serving.
      await Deno.writeTextFile(g.file, config(listener("bad.crt"), up.url));
      const failed = await g.gw.reload();
      assertEquals(failed.ok, false);
      assertMatch(
        failed.errors[0]!,
        /gateway\.yaml:1:\d+: listeners\[0\]\.tls\.cert: cannot open listener: tls\.cert bad\.crt holds no readable PEM certificate/,
      );
      assertOk(await servesCert(port!, firstPem), "the listener was lost with the failed reload");

      // Back to the first file, renewed in place: the reload opens the listener again.
      await Deno.writeTextFile(g.file, config(listener("tls.crt"), up.url));
      await Deno.copyFile(second.cert, `${g.dir}/tls.crt`);
      await Deno.copyFile(second.key, `${g.dir}/tls.key`);
      assertEquals((await g.gw.reload()).ok, true);
      assertOk(await servesCert(port!, secondPem), "the renewed certificate is not served");
      // And with the config file unchanged since (a SIGHUP after renewing): the same.
      await Deno.copyFile(first.cert, `${g.dir}/tls.crt`);
      await Deno.copyFile(first.key, `${g.dir}/tls.key`);
      assertEquals((await g.gw.reload()).ok, true);
      assertOk(await servesCert(port!, firstPem));
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(certs, { recursive: true });
  }
});

Deno.test("reload: a listener that keeps its port is reopened at once, not after its slow requests", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const up = startUpstream(async (req) => {
    if (new URL(req.url).pathname === "/slow") await released;
    return new Response("ok");
  });
  const [port] = freePorts(1);
  const listener = (host: string) => `{ name: public, host: ${host}, port: ${port} }`;
  const g = await startGateway(config(listener("127.0.0.1"), up.url));
  const base = `http://127.0.0.1:${port}`;
  try {
    const slow = fetch(`${base}/slow`).then(async (r) => [r.status, await r.text()]);
    while (up.received.length === 0) await new Promise((r) => setTimeout(r, 10));
    await Deno.writeTextFile(g.file, config(listener("0.0.0.0"), up.url));
    // With the slow request still held upstream: the reload used to wait for it, and the port
    // refused every connection meanwhile.
    const reloaded = await within(5_000, g.gw.reload());
    assertEquals((reloaded as { ok: boolean }).ok, true);
    const probe = await fetch(`${base}/probe`);
    assertEquals([probe.status, await probe.text()], [200, "ok"]);
    release();
    assertEquals(await slow, [200, "ok"]);
  } finally {
    release();
    await g.close();
    await up.close();
  }
});

Deno.test("reload: POST /reload that moves the admin listener answers, and the admin API moves", async () => {
  const up = startUpstream(() => new Response("ok"));
  const [first, second] = freePorts(2);
  const listener = "{ name: public, host: 127.0.0.1, port: 0 }";
  const g = await startGateway(config(listener, up.url, first));
  try {
    await Deno.writeTextFile(g.file, config(listener, up.url, second));
    // The reload closes the listener this request came in on: it used to wait for it, forever.
    const answered = await within(
      5_000,
      fetch(`http://127.0.0.1:${first}/reload`, { method: "POST" }).then((r) => r.json()),
    );
    assertEquals((answered as { ok: boolean }).ok, true);
    const ready = await fetch(`http://127.0.0.1:${second}/readyz`);
    assertEquals(ready.status, 200);
    await ready.body?.cancel();
    const gone = await fetch(`http://127.0.0.1:${first}/readyz`).then(() => "open", () => "closed");
    assertEquals(gone, "closed");
    // And the next reload is not stuck behind it.
    assertEquals((await within(5_000, g.gw.reload()) as { ok: boolean }).ok, true);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("reload: a listener renamed, or its port given to a new one, takes the port over", async () => {
  const up = startUpstream(() => new Response("ok"));
  const [port] = freePorts(1);
  const listener = (name: string) => `{ name: ${name}, host: 127.0.0.1, port: ${port} }`;
  const g = await startGateway(config(listener("public"), up.url));
  const get = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    return [res.status, await res.text()];
  };
  try {
    assertEquals(await get(), [200, "ok"]);
    await Deno.writeTextFile(g.file, config(listener("web"), up.url));
    const renamed = await g.gw.reload();
    assertEquals([renamed.ok, renamed.errors], [true, []]);
    assertEquals(Object.keys(g.gw.addresses()).sort(), ["admin", "web"]);
    assertEquals(g.gw.addresses().web, `http://127.0.0.1:${port}`);
    assertEquals(await get(), [200, "ok"]);
    // A rename whose listener cannot open (its TLS file does not load) leaves the old one serving.
    await Deno.writeTextFile(
      g.file,
      config(
        `{ name: secure, host: 127.0.0.1, port: ${port}, tls: { cert: bad.crt, key: bad.key } }`,
        up.url,
      ),
    );
    const failed = await g.gw.reload();
    assertEquals(failed.ok, false);
    assertMatch(failed.errors[0]!, /listeners\[0\]\.tls\.cert: cannot open listener/);
    assertEquals(Object.keys(g.gw.addresses()).sort(), ["admin", "web"]);
    assertEquals(await get(), [200, "ok"]);
    // A rename made, then the reload failing after it (the admin listener's port is taken):
    // the listener is back under its old name.
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await Deno.writeTextFile(g.file, config(listener("api"), up.url, taken.addr.port));
      const undone = await g.gw.reload();
      assertEquals(undone.ok, false);
      assertMatch(undone.errors[0]!, /admin: cannot open the admin listener/);
    } finally {
      taken.close();
    }
    assertEquals(Object.keys(g.gw.addresses()).sort(), ["admin", "web"]);
    assertEquals(g.gw.addresses().web, `http://127.0.0.1:${port}`);
    assertEquals(await get(), [200, "ok"]);
  } finally {
    await g.close();
    await up.close();
  }
});
