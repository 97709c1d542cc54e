/**
 * 200 MB up and 200 MB down through a gateway process: the bodies stream, so
 * the gateway's resident memory grows by far less than the body. A client
 * that stops reading a download holds the upstream back.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { spawnProxyGateway } from "../helpers/process.ts";
import { proxyAllConfig, startGateway } from "../helpers/gateway.ts";

const SIZE = 200 * 1024 * 1024;
const CHUNK = 256 * 1024;
const LIMIT = 64 * 1024 * 1024;
const WARM = 16 * 1024 * 1024;

function generated(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = new Uint8Array(CHUNK).map((_, i) => i & 0xff);
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(CHUNK, total - sent);
      c.enqueue(n === CHUNK ? chunk.slice() : chunk.slice(0, n));
      sent += n;
    },
  }, { highWaterMark: 0 });
}

function sizeFor(req: Request): number {
  return new URL(req.url).pathname === "/warm" ? WARM : SIZE;
}

/** Reads `body` to the end; returns its length, and whether every byte is the generated pattern. */
async function drain(body: ReadableStream<Uint8Array>): Promise<{ n: number; intact: boolean }> {
  let n = 0;
  let intact = true;
  for await (const c of body) {
    // generated() repeats 0..255 from offset 0 (its chunk size is a multiple of 256).
    if (intact && (c[0] !== (n & 0xff) || c[c.length - 1] !== ((n + c.length - 1) & 0xff))) {
      intact = false;
    }
    n += c.length;
  }
  return { n, intact };
}

/** Runs a gateway process in front of `up` and measures its peak RSS growth during `work`. */
async function measureGrowth(
  upstreamUrl: string,
  work: (base: string) => Promise<void>,
): Promise<number> {
  const p = await spawnProxyGateway(upstreamUrl, `security: { max_body_bytes: ${2 * SIZE} }`);
  const gw = p.gw;
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await gw.rss().catch(() => 0));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const base = p.base;
    // Warm up so that the baseline includes compiled code, a pooled connection and
    // the heap V8 keeps for streaming: steady state, not first-use growth.
    await (await fetch(`${base}/warm`, { method: "POST", body: new Uint8Array(WARM) })).text();
    await drain((await fetch(`${base}/warm`)).body!);
    const baseline = await gw.rss();
    peak = baseline;
    await work(base);
    sampling = false;
    await sampler;
    return peak - baseline;
  } finally {
    sampling = false;
    await sampler;
    await p.close();
  }
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

Deno.test("streaming: 200 MB downloads (sized and chunked) grow the gateway's RSS by under 64 MB", async () => {
  // `/chunked/...` answers without a length, so the gateway relays a chunked body.
  const up = startUpstream((req) => {
    if (req.method === "POST") return new Response("{}");
    const size = sizeFor(req);
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (!new URL(req.url).pathname.startsWith("/chunked")) headers["content-length"] = String(size);
    return new Response(generated(size), { headers });
  });
  try {
    for (const path of ["/download", "/chunked/download"]) {
      const growth = await measureGrowth(up.url, async (base) => {
        const download = await fetch(`${base}${path}`);
        const sized = download.headers.has("content-length");
        assertEquals(sized, path === "/download", `${path} framing`);
        assertEquals(await drain(download.body!), { n: SIZE, intact: true });
      });
      console.log(`download ${path}: gateway RSS growth ${mb(growth)}`);
      assertOk(growth < LIMIT, `${path}: RSS grew by ${mb(growth)}`);
    }
  } finally {
    await up.close();
  }
});

Deno.test("streaming: 200 MB uploads (chunked and sized) grow the gateway's RSS by under 64 MB", async () => {
  const up = startUpstream(async (req) =>
    req.method === "POST"
      ? Response.json({ received: (await drain(req.body!)).n })
      : new Response(generated(WARM))
  );
  try {
    const growth = await measureGrowth(up.url, async (base) => {
      // A streamed body goes out chunked; a byte array with Content-Length.
      const chunked = await fetch(`${base}/upload`, { method: "POST", body: generated(SIZE) });
      assertEquals((await chunked.json()).received, SIZE);
      const sized = await fetch(`${base}/upload`, { method: "POST", body: new Uint8Array(SIZE) });
      assertEquals((await sized.json()).received, SIZE);
    });
    console.log(`upload: gateway RSS growth ${mb(growth)}`);
    assertOk(growth < LIMIT, `RSS grew by ${mb(growth)}`);
  } finally {
    await up.close();
  }
});

/**
 * An upstream on raw TCP that answers one request with a body of 1 GiB, sized or chunked,
 * written as fast as its socket takes it; `written` counts what it got out.
 */
function startEndlessUpstream(chunked: boolean): { url: string; written(): number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const total = 1024 * 1024 * 1024;
  const piece = 256 * 1024;
  let written = 0;
  let conn: Deno.Conn | null = null;
  (async () => {
    conn = await listener.accept();
    await conn.read(new Uint8Array(64 * 1024));
    const enc = new TextEncoder();
    const framing = chunked ? "transfer-encoding: chunked" : `content-length: ${total}`;
    await conn.write(enc.encode(`HTTP/1.1 200 OK\r\n${framing}\r\n\r\n`));
    const data = chunked
      ? enc.encode(`${piece.toString(16)}\r\n${"a".repeat(piece)}\r\n`)
      : new Uint8Array(piece).fill(97);
    while (written < total) written += await conn.write(data);
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    written: () => written,
    close: () => {
      listener.close();
      try {
        (conn as Deno.Conn | null)?.close();
      } catch {
        // already closed
      }
    },
  };
}

Deno.test("streaming: a client that stops reading a download holds the upstream back, sized and chunked", async () => {
  for (const chunked of [false, true]) {
    const up = startEndlessUpstream(chunked);
    const g = await startGateway(proxyAllConfig(up.url));
    const client = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(new URL(g.url()).port),
    });
    try {
      await client.write(new TextEncoder().encode("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
      await client.read(new Uint8Array(1024)); // the head, and nothing more from here on
      // Once the socket buffers on both sides are full, the upstream cannot write any more.
      let seen = -1;
      for (let i = 0; i < 100 && up.written() !== seen; i++) {
        seen = up.written();
        await new Promise((r) => setTimeout(r, 200));
      }
      const framing = chunked ? "chunked" : "sized";
      assertOk(up.written() < LIMIT, `${framing}: the upstream wrote ${mb(up.written())}`);
    } finally {
      client.close();
      up.close();
      await g.close();
    }
  }
});
