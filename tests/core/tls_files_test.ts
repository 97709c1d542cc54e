/**
 * A TLS listener's certificate and key are checked before it opens, the same
 * on every kind of TLS listener: a key that is not the certificate's is a
 * config error at the `tls.key` line, at start and on reload (where the
 * listener serving keeps serving).
 */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";
import { readTlsFiles, TlsFileError } from "../../lib/server/tls_files.ts";
import { startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { makeTestPki } from "../helpers/pki.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";

const FIXTURES = new URL("../auth/fixtures/", import.meta.url);
const fixture = (name: string) => Deno.readTextFile(new URL(name, FIXTURES));

/** The listeners `node:https` serves: mTLS, and a TLS 1.3 floor. */
const NODE_LISTENERS = {
  mtls: "{ cert: server.crt, key: KEY, client_ca: ca.crt, client_cert: optional }",
  tls13: '{ cert: server.crt, key: KEY, min_version: "1.3" }',
};

function config(tls: string, upstream: string): string {
  return `listeners:
  - name: secure
    host: 127.0.0.1
    port: 0
    tls: ${tls}
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`;
}

Deno.test("TLS files: a key that is not the certificate's is refused at start and on reload, on node:https listeners too", async (t) => {
  const pki = await makeTestPki();
  const up = startUpstream(() => new Response("ok"));
  const ca = await fixture("ca.crt");
  const files = {
    "server.crt": await fixture("server.crt"),
    "server.key": await fixture("server.key"),
    "other.key": pki.key,
    "ca.crt": ca,
  };
  const client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    for (const [kind, tls] of Object.entries(NODE_LISTENERS)) {
      await t.step(`${kind}: at start`, async () => {
        const e = await startGateway(config(tls.replace("KEY", "other.key"), up.url), { files })
          .then(async (g) => {
            await g.close();
            return "started";
          }, String);
        assertMatch(
          e,
          /gateway\.yaml:5:\d+: listeners\[0\]\.tls\.key: cannot open listener: tls\.key other\.key is not the private key of the certificate in tls\.cert server\.crt/,
        );
      });

      await t.step(`${kind}: on reload, the listener serving keeps serving`, async () => {
        const g = await startGateway(config(tls.replace("KEY", "server.key"), up.url), { files });
        try {
          const get = async () => {
            const res = await fetch(`${g.url("secure")}/a`, { client });
            return [res.status, await res.text()];
          };
          assertEquals(await get(), [200, "ok"]);
          await Deno.writeTextFile(g.file, config(tls.replace("KEY", "other.key"), up.url));
          const reload = await g.gw.reload();
          assertEquals(reload.ok, false);
          assertMatch(reload.errors[0]!, /listeners\[0\]\.tls\.key: .* is not the private key/);
          assertEquals(await get(), [200, "ok"]);
        } finally {
          await g.close();
        }
      });
    }
  } finally {
    client.close();
    await up.close();
    await pki.close();
  }
});

// Until 2026-12-07 it was served: a reload with an expired renewal "succeeded" and every
// client's handshake failed from then on.
Deno.test("TLS files: a reload refuses an expired certificate, the valid one serving kept; a start serves it, logged", async () => {
  const up = startUpstream(() => new Response("ok"));
  const ca = await fixture("ca.crt");
  const valid = { cert: await fixture("server.crt"), key: await fixture("server.key") };
  const expired = { cert: await fixture("client_expired.crt"), key: await fixture("client.key") };
  const tls = "{ cert: tls.crt, key: tls.key }";
  const client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    // With nothing to keep, refusing would take down what still works (clients that do not
    // check expiry, health checks): the gateway starts, and says why handshakes fail.
    const logs: string[] = [];
    const stale = await startGateway(config(tls, up.url), {
      files: { "tls.crt": expired.cert, "tls.key": expired.key },
      logger: new JsonLogger("info", (l) => logs.push(l)),
    });
    await stale.close();
    const errors = logs.map((l) => JSON.parse(l)).filter((l) => l.level === "error");
    assertEquals(errors.map((l) => [l.msg, l.listener]), [[
      "the certificate in tls.cert tls.crt expired on 2020-01-02T00:00:00.000Z",
      "secure",
    ]]);

    const g = await startGateway(config(tls, up.url), {
      files: { "tls.crt": valid.cert, "tls.key": valid.key },
    });
    try {
      const get = async () => {
        const res = await fetch(`${g.url("secure")}/a`, { client });
        return [res.status, await res.text()];
      };
      assertEquals(await get(), [200, "ok"]);
      // Renewed in place with a stale pair, then a SIGHUP: the config text is the same.
      await Deno.writeTextFile(`${g.dir}/tls.crt`, expired.cert);
      await Deno.writeTextFile(`${g.dir}/tls.key`, expired.key);
      const reload = await g.gw.reload();
      assertEquals(reload.ok, false);
      assertMatch(reload.errors[0]!, /listeners\[0\]\.tls\.cert: .* expired on /);
      assertEquals(await get(), [200, "ok"]);
    } finally {
      await g.close();
    }
  } finally {
    client.close();
    await up.close();
  }
});

Deno.test("TLS files: with neither file readable the error names tls.cert, every time", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (let i = 0; i < 20; i++) {
      const e = await readTlsFiles(
        { cert: "none.crt", key: "none.key", min_version: "1.2", http2: false },
        (p) => `${dir}/${p}`,
      )
        .then(() => null, (e: unknown) => e);
      // Until 2026-12-08 it was whichever read failed first, often tls.key.
      assertOk(e instanceof TlsFileError && e.field === "cert", `${i}: ${e}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
