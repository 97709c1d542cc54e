/**
 * Head limits (414, 431), the listener's own ceilings, and slow request bodies
 * (408), through a running gateway; refused requests never reach the upstream.
 */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { rawRequest } from "../helpers/raw.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
security: { max_uri_bytes: 1000, max_header_bytes: 2000, max_headers: 20, body_timeout_ms: 300 }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - name: tight
    match: { path: /tight }
    upstream: app
    limits: { max_uri_bytes: 100, max_headers: 8 }
  - name: search
    match: { path: /search }
    upstream: app
    limits: { max_uri_bytes: 4000 }
  - { name: all, match: { path: / }, upstream: app }
`;

function headers(n: number, size = 1): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) out[`x-h${i}`] = "v".repeat(size);
  return out;
}

Deno.test("request target, header bytes and header count limits answer 414 and 431", async () => {
  await withRig(config, async ({ g, up }) => {
    const base = g.url();
    await assertError(await fetch(`${base}/a?q=${"x".repeat(1000)}`), 414, "uri_too_long");
    await assertError(await fetch(`${base}/${"p".repeat(1001)}`), 414, "uri_too_long");
    await assertError(await fetch(`${base}/a`, { headers: headers(25) }), 431, "headers_too_large");
    await assertError(
      await fetch(`${base}/a`, { headers: { "x-big": "v".repeat(2100) } }),
      431,
      "headers_too_large",
    );
    // Route overrides: tighter on /tight, looser on /search.
    await assertError(await fetch(`${base}/tight?q=${"x".repeat(100)}`), 414, "uri_too_long");
    await assertError(
      await fetch(`${base}/tight`, { headers: headers(9) }),
      431,
      "headers_too_large",
    );
    await assertError(await fetch(`${base}/a?q=${"x".repeat(2000)}`), 414, "uri_too_long");
    const search = await fetch(`${base}/search?q=${"x".repeat(2000)}`);
    assertEquals(search.status, 200);
    await search.body?.cancel();
    const small = await fetch(`${base}/a`, { headers: headers(10) });
    assertEquals(small.status, 200);
    await small.body?.cancel();
    // Every field line counts, a repeated one too: 10 lines over /tight's 8, though only 3 names.
    const host = new URL(base).host;
    const repeated = await rawRequest(base, [
      "GET /tight HTTP/1.1",
      `Host: ${host}`,
      ...Array.from({ length: 8 }, (_, i) => `X-Dup: ${i}`),
      "Connection: close",
    ]);
    assertEquals(repeated.status, 431);
    assertEquals(JSON.parse(repeated.body).error.code, "headers_too_large");
    assertEquals(up.received.map((r) => r.url.slice(0, 8)), ["/search?", "/a"]);
  });
});

Deno.test("heads over the listener's own ceilings get 431 and never reach the gateway", async () => {
  await withRig(config, async ({ g, up }) => {
    const hugeHeader = await rawRequest(g.url(), [
      "GET /a HTTP/1.1",
      "Host: localhost",
      "Connection: close",
      `X-Big: ${"v".repeat(70_000)}`,
    ]);
    assertEquals(hugeHeader.status, 431);
    assertMatch(hugeHeader.raw, /"code":"headers_too_large"/);
    const many = Array.from({ length: 200 }, (_, i) => `X-H${i}: v`);
    const tooMany = await rawRequest(g.url(), [
      "GET /a HTTP/1.1",
      "Host: localhost",
      "Connection: close",
      ...many,
    ]);
    assertEquals(tooMany.status, 431);
    assertMatch(tooMany.raw, /"code":"headers_too_large"/);
    const hugeLine = await rawRequest(g.url(), [
      `GET /a?q=${"x".repeat(70_000)} HTTP/1.1`,
      "Host: localhost",
      "Connection: close",
    ]);
    assertEquals(hugeLine.status, 414);
    assertMatch(hugeLine.raw, /"code":"uri_too_long"/);
    assertEquals(up.received.length, 0);
  });
});

/** Sends a request head announcing `length` body bytes, then `sent` bytes, then waits. */
async function slowBody(base: string, length: number, sent: number, waitMs: number) {
  const u = new URL(base);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  const timer = setTimeout(() => conn.close(), waitMs);
  try {
    await conn.write(new TextEncoder().encode(
      `POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\n\r\n${
        "a".repeat(sent)
      }`,
    ));
    const buf = new Uint8Array(8192);
    let text = "";
    const started = performance.now();
    while (!text.includes("\r\n\r\n") || !text.includes("}")) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return { text, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

Deno.test("a body that does not arrive in body_timeout_ms is answered 408 and the upstream gets no complete request", async () => {
  const completed: number[] = [];
  const handler = async (req: Request) => {
    try {
      completed.push((await req.arrayBuffer()).byteLength);
    } catch {
      // the gateway closed the upstream connection mid-body
    }
    return new Response("ok");
  };
  await withRig(config, async ({ g }) => {
    const { text, ms } = await slowBody(g.url(), 1000, 10, 5000);
    assertMatch(text, /^HTTP\/1\.1 408 /);
    assertMatch(text, /"code":"request_timeout"/);
    assertOk(ms >= 250 && ms < 3000, `answered after ${ms} ms`);
    assertEquals(completed, []);
  }, { handler });
});

Deno.test("the body deadline also covers policies that read the body before the upstream", async () => {
  const body = (u: string) => `
security: { body_timeout_ms: 300 }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - name: filtered
    match: { path: / }
    upstream: app
    waf: { rules: [ { id: no-evil, body: { contains: evil } } ] }
`;
  await withRig(body, async ({ g, up }) => {
    const { text } = await slowBody(g.url(), 1000, 10, 5000);
    assertMatch(text, /^HTTP\/1\.1 408 /);
    assertEquals(up.received.length, 0);
  });
});

Deno.test("a slow but steady body passes: body_timeout_ms bounds the wait for each piece", async () => {
  const sizes: number[] = [];
  const handler = async (req: Request) => {
    sizes.push((await req.arrayBuffer()).byteLength);
    return new Response("ok");
  };
  // Pieces 150 ms apart against a 1.5 s timeout (a 300 ms one failed when a loaded machine
  // fired the 150 ms timer late): the body takes longer than one timeout in total.
  const steady = (u: string) => config(u).replace("body_timeout_ms: 300", "body_timeout_ms: 1500");
  await withRig(steady, async ({ g }) => {
    const u = new URL(g.url());
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    try {
      const enc = new TextEncoder();
      await conn.write(enc.encode(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 120\r\n\r\n",
      ));
      const started = performance.now();
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 150));
        await conn.write(enc.encode("x".repeat(10)));
      }
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      assertMatch(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
      assertOk(
        performance.now() - started > 1500,
        "the body took longer than one timeout in total",
      );
      assertEquals(sizes, [120]);
    } finally {
      conn.close();
    }
  }, { handler });
});

Deno.test("an upstream slow to take the body is not the client's delay: no 408 while the gateway is not reading", async () => {
  const sizes: number[] = [];
  const handler = async (req: Request) => {
    const reader = req.body!.getReader();
    let size = 0;
    let paused = false;
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (!paused) {
        // Busy with the first piece: the gateway's writes back up, so it stops reading the client.
        paused = true;
        await new Promise((r) => setTimeout(r, 1200));
      }
    }
    sizes.push(size);
    return new Response("ok");
  };
  const body = (u: string) => `
security: { body_timeout_ms: 300, max_body_bytes: 67108864 }
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`;
  const size = 48 * 1024 * 1024;
  await withRig(body, async ({ g }) => {
    // The whole body is ready at once: the client never makes the gateway wait.
    const res = await fetch(g.url() + "/upload", { method: "POST", body: new Uint8Array(size) });
    const text = await res.text();
    assertEquals(res.status, 200, text);
    assertEquals(sizes, [size]);
  }, { handler });
});
