/**
 * 200 MB up and 200 MB down through a gateway process: the bodies stream, so
 * the gateway's resident memory grows by far less than the body.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { spawnProxyGateway } from "../helpers/process.ts";

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

async function drain(body: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of body) n += c.length;
  return n;
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

Deno.test("streaming: a 200 MB download grows the gateway's RSS by under 64 MB", async () => {
  const up = startUpstream((req) =>
    req.method === "POST" ? new Response("{}") : new Response(generated(sizeFor(req)), {
      headers: {
        "content-length": String(sizeFor(req)),
        "content-type": "application/octet-stream",
      },
    })
  );
  try {
    const growth = await measureGrowth(up.url, async (base) => {
      const download = await fetch(`${base}/download`);
      assertEquals(await drain(download.body!), SIZE);
    });
    console.log(`download: gateway RSS growth ${mb(growth)}`);
    assertOk(growth < LIMIT, `RSS grew by ${mb(growth)}`);
  } finally {
    await up.close();
  }
});

Deno.test("streaming: 200 MB uploads (chunked and sized) grow the gateway's RSS by under 64 MB", async () => {
  const up = startUpstream(async (req) =>
    req.method === "POST"
      ? Response.json({ received: await drain(req.body!) })
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
