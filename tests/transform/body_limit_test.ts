/** Request body size limits through a real listener: 413 before or while the body streams. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { parseResponse, readUntilClose } from "../helpers/raw.ts";

/** An upstream that reads whole bodies and records their sizes, or "failed" when a body broke. */
function bodyRecorder() {
  const bodies: (number | "failed")[] = [];
  const up = startUpstream(async (req) => {
    try {
      bodies.push((await req.arrayBuffer()).byteLength);
    } catch {
      bodies.push("failed");
    }
    return new Response("ok");
  });
  return { up, bodies };
}

async function withLimits(fn: (g: TestGateway, bodies: (number | "failed")[]) => Promise<void>) {
  const { up, bodies } = bodyRecorder();
  const g = await startGateway(baseConfig(`
security: { max_body_bytes: 4096 }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: small, match: { path: /small }, upstream: a, limits: { max_body_bytes: 100 } }
  - { name: upload, match: { path: /upload }, upstream: a, limits: { max_body_bytes: 65536 } }
  - { name: default, match: { path: / }, upstream: a }
`));
  try {
    await fn(g, bodies);
  } finally {
    await g.close();
    await up.close();
  }
}

/** A body of `total` bytes sent as a stream (chunked), `chunk` bytes at a time. */
function streamed(
  total: number,
  chunk = 1024,
): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent >= total) return c.close();
      await new Promise((r) => setTimeout(r, 1));
      const n = Math.min(chunk, total - sent);
      sent += n;
      c.enqueue(new Uint8Array(n).fill(97));
    },
  });
  return { body, pulled: () => sent };
}

Deno.test("limits: a Content-Length over the limit is refused before the upstream is contacted", async () => {
  await withLimits(async (g, bodies) => {
    const res = await fetch(`${g.url()}/small`, { method: "POST", body: "x".repeat(101) });
    const err = await assertError(res, 413, "payload_too_large");
    assertEquals(err.error.message, "The request body is larger than 100 bytes");
    const global = await fetch(`${g.url()}/other`, { method: "PUT", body: "x".repeat(4097) });
    await assertError(global, 413, "payload_too_large");
    assertEquals(bodies.length, 0);
  });
});

Deno.test("limits: bodies within the limit pass, streamed or not; a route may raise the global limit", async () => {
  await withLimits(async (g, bodies) => {
    for (
      const [path, body] of [
        ["/small", "x".repeat(100)],
        ["/other", "x".repeat(4096)],
        ["/upload", "x".repeat(60_000)],
      ] as const
    ) {
      const res = await fetch(`${g.url()}${path}`, { method: "POST", body });
      assertEquals(res.status, 200, path);
      await res.body?.cancel();
    }
    const s = streamed(4096);
    const res = await fetch(`${g.url()}/other`, { method: "POST", body: s.body });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    assertEquals(bodies, [100, 4096, 60_000, 4096]);
  });
});

Deno.test("limits: a chunked upload is cut with 413 once it passes the limit", async () => {
  await withLimits(async (g, bodies) => {
    const s = streamed(1_000_000);
    const res = await fetch(`${g.url()}/other`, { method: "POST", body: s.body });
    // The answer came soon after the limit, long before the end of the upload (the client
    // goes on pulling a chunk a millisecond meanwhile: room for a loaded machine's delays).
    const pulled = s.pulled();
    assertOk(pulled < 500_000, `pulled ${pulled} bytes before the answer`);
    const err = await assertError(res, 413, "payload_too_large");
    assertEquals(err.error.message, "The request body is larger than 4096 bytes");
    assertEquals(res.headers.get("connection"), "close");
    // The upstream saw the exchange break, never a complete (truncated) body.
    for (let i = 0; i < 50 && bodies.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assertEquals(bodies.filter((b) => b !== "failed"), []);
  });
});

Deno.test("limits: a Content-Length over the limit sent as a list or twice is refused before the upstream is contacted", async () => {
  await withLimits(async (g, bodies) => {
    const u = new URL(g.url());
    const heads = [
      ["Content-Length: 5000, 5000"],
      ["Content-Length: 5000", "Content-Length: 5000"],
    ];
    for (const lengths of heads) {
      const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
      // The head and a part of the body only: the rest would never come.
      const head = ["POST /small HTTP/1.1", `Host: ${u.host}`, ...lengths, "", "x".repeat(50)];
      await conn.write(new TextEncoder().encode(head.join("\r\n")));
      const res = parseResponse((await readUntilClose(conn, 2000)).text);
      assertEquals(res.status, 413, lengths.join(" | "));
      assertEquals(res.headers.get("connection"), "close");
    }
    assertEquals(bodies.length, 0);
  });
});
