/**
 * A JWKS or introspection endpoint that answers without end: the gateway reads
 * at most its cap (1 MiB, 256 KiB) and gives up, instead of holding the whole
 * answer (200 MB took the process from 87 to 721 MB). The endpoint counts what
 * the gateway pulled from it before cancelling.
 */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";

const MIB = 1024 * 1024;
const BODY_MIB = 64;

/** An endpoint answering a JSON document padded to 64 MiB, chunked; `pulled` counts what left. */
function startEndlessEndpoint() {
  const piece = new Uint8Array(64 * 1024).fill(0x78);
  const state = { pulled: 0, served: 0, over: Promise.withResolvers<void>() };
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      await req.body?.cancel();
      state.served++;
      const enc = new TextEncoder();
      return new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(enc.encode('{"active":false,"keys":[],"pad":"'));
          },
          pull(c) {
            if (state.pulled >= BODY_MIB * MIB) {
              c.enqueue(enc.encode('"}'));
              c.close();
              state.over.resolve();
              return;
            }
            state.pulled += piece.length;
            c.enqueue(piece);
          },
          cancel() {
            state.over.resolve();
          },
        }, { highWaterMark: 0 }),
        { headers: { "content-type": "application/json" } },
      );
    },
  );
  return {
    state,
    url: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

for (const kind of ["jwt", "oauth2_introspection"] as const) {
  Deno.test(`${kind}: an endless answer from the endpoint is cut off at the cap`, async () => {
    const idp = startEndlessEndpoint();
    const up = startUpstream();
    const provider = kind === "jwt"
      ? `{ kind: jwt, jwks_url: "${idp.url}/jwks", algorithms: [RS256] }`
      : `{ kind: oauth2_introspection, url: "${idp.url}/introspect", client_id: g, client_secret: s }`;
    const g = await startGateway(baseConfig(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  a: ${provider}
routes:
  - { name: r, match: { path: / }, upstream: up, auth: [a] }
`));
    try {
      // A kid the (never fetched) key set cannot hold; or an opaque token to introspect.
      const token = kind === "jwt"
        ? "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vcGUifQ.eyJzdWIiOiJ4In0.c2ln"
        : "opaque-token";
      const res = await fetch(g.url(), { headers: { authorization: `Bearer ${token}` } });
      await assertError(res, 503, "auth_unavailable");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        idp.state.over.promise,
        new Promise((r) => timer = setTimeout(r, 10_000)),
      ]);
      clearTimeout(timer);
      assertOk(idp.state.served >= 1, "the endpoint was asked");
      // The cap, plus what socket buffers held when the gateway gave up.
      assertOk(idp.state.pulled < 16 * MIB, `pulled ${idp.state.pulled} bytes`);
      assertEquals(idp.state.pulled < BODY_MIB * MIB, true);
    } finally {
      await g.close();
      await up.close();
      await idp.close();
    }
  });
}
