/**
 * Inputs crafted to cost superlinear CPU (a quadratic regex, a list scanned
 * once per element) get the right answer through a real listener. Each
 * request is bounded by a timeout, so a regression fails instead of hanging;
 * none asserts on speed.
 */
import { assertEquals } from "../helpers/assert.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { parseResponse, rawGet, readUntilClose } from "../helpers/raw.ts";
import { baseConfig, proxyAllConfig, startGateway } from "../helpers/gateway.ts";
import { startUpstream } from "../helpers/upstream.ts";

Deno.test("a header template copies values with long inner runs of spaces, edges trimmed", async () => {
  // A raw upstream: the runtime's server refuses a head as large as the one sent on here.
  let seen = "";
  const up = startRawUpstream(async (x) => {
    seen = x.head;
    await x.write("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    x.close();
  });
  // One run of 40 x 6000 spaces: the quadratic trim took minutes on it.
  const copies = "\${query.s}".repeat(40);
  const g = await startGateway(baseConfig(`
security: { max_uri_bytes: 65536, max_header_bytes: 65536 }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: all
    match: { path: / }
    upstream: a
    transform:
      request:
        headers:
          remove: [X-In]
          set: { X-Echo: "\${header.X-In}", X-Runs: "<${copies}>", X-Edges: " \${query.s}" }
`));
  try {
    const inner = `a${" ".repeat(40_000)}b`;
    const res = await fetch(`${g.url()}/x?s=${"%20".repeat(6000)}`, {
      headers: { "x-in": `${inner}\t` },
      signal: AbortSignal.timeout(10_000),
    });
    assertEquals(res.status, 204);
    await res.body?.cancel();
    const fields = new Map(
      seen.split("\r\n").slice(1).map((l) => {
        const colon = l.indexOf(":");
        return [l.slice(0, colon), l.slice(colon + 2)] as const;
      }),
    );
    assertEquals(fields.get("x-echo"), inner);
    assertEquals(fields.get("x-runs"), `<${" ".repeat(240_000)}>`);
    // Nothing but blanks: the value is empty, and a set that comes out empty sends nothing.
    assertEquals(fields.has("x-edges"), false);
  } finally {
    await g.close();
    up.close();
  }
});

Deno.test("an upstream's Connection naming 200k options over 100k fields drops just those", async () => {
  const options = "a,".repeat(200_000) + "x-drop";
  const up = startRawUpstream(async (x) => {
    await x.write(
      `HTTP/1.1 200 OK\r\nConnection: ${options}\r\n${"b: c\r\n".repeat(100_000)}` +
        "X-Drop: 1\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nok",
    );
  });
  const g = await startGateway(proxyAllConfig(up.url));
  try {
    const res = await rawGet(g.url(), "/x", "a.example", [], 10_000);
    assertEquals(res.status, 200, res.body.slice(0, 300));
    assertEquals(res.body, "ok");
    const lines = res.raw.slice(0, res.raw.indexOf("\r\n\r\n")).split("\r\n");
    assertEquals(lines.filter((l) => l === "b: c").length, 100_000);
    assertEquals(lines.some((l) => /^x-drop:/i.test(l)), false);
    assertEquals(lines.includes("x-keep: 1"), true, lines.slice(-8).join("|"));
  } finally {
    await g.close();
    up.close();
  }
});

/** Queries up to 64 KiB, and team-a's API key read from an `api_key` parameter too. */
function longQueryConfig(upstream: string, routes: string): string {
  return baseConfig(`
security: { max_uri_bytes: 65536, max_header_bytes: 65536 }
upstreams:
  a: { targets: [ { url: "${upstream}" } ] }
auth:
  keys: { kind: api_key, header: X-API-Key, query: api_key }
consumers:
  - { id: team-a, api_keys: ["k-team-a-0123456789"] }
routes:
${routes}`);
}

Deno.test("an API key in the query is found and stripped after 20k escapes in a value", async () => {
  let seen = "";
  const up = startRawUpstream(async (x) => {
    seen = x.path;
    await x.write("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    x.close();
  });
  const g = await startGateway(
    longQueryConfig(up.url, "  - { name: all, match: { path: / }, upstream: a, auth: [keys] }"),
  );
  try {
    const escapes = "%41".repeat(20_000);
    const res = await rawGet(g.url(), `/x?a=${escapes}&api_key=k-team-a-0123456789`, "a.example");
    assertEquals(res.status, 204, res.body);
    assertEquals(seen, `/x?a=${escapes}`);
    const refused = await rawGet(g.url(), `/x?a=${escapes}&api%5Fkey=wrong`, "a.example");
    assertEquals(refused.status, 401, refused.body);
  } finally {
    await g.close();
    up.close();
  }
});

/** Writes `pieces` one by one, pausing between them so that each lands in a read of its own. */
async function trickle(write: (s: string) => Promise<unknown>, pieces: string[]): Promise<void> {
  for (const p of pieces) {
    await write(p);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** `text` cut into pieces of `size` bytes. */
function cut(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

Deno.test("heads trickled across reads: a CR LF split between reads is a line end, a LF a read starts with after another byte is bare", async () => {
  // The search for a bare LF resumes where the last read's stopped: its edges are what can go wrong.
  const up = startRawUpstream(async (x) => {
    if (x.path === "/bare") {
      // No end: only the bare LF check answers before the first-byte timeout (60 s).
      await trickle(x.write, ["HTTP/1.1 200 OK\r\nx-a: b", "\nContent-Length: 2\r\n"]);
      return;
    }
    const long = "b".repeat(20_000);
    await trickle(x.write, [
      "HTTP/1.1 200 OK\r",
      `\nx-long: ${long.slice(0, 3_000)}`,
      ...cut(long.slice(3_000), 997),
      "\r",
      "\nContent-Length: 2\r\n\r",
      "\nok",
    ]);
  });
  const g = await startGateway(baseConfig(`
security: { max_header_bytes: 65536 }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a }
`));
  const u = new URL(g.url());
  const send = async (pieces: string[]) => {
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    const enc = new TextEncoder();
    await trickle((s) => conn.write(enc.encode(s)), pieces);
    return parseResponse((await readUntilClose(conn, 10_000)).text);
  };
  try {
    const long = `X-Long: ${"a".repeat(30_000)}\r\n`;
    const ok = await send([
      "GET /x HTTP/1.1\r",
      "\nHost: a.example\r",
      `\nConnection: close\r\n${long.slice(0, 10_001)}`,
      ...cut(long.slice(10_001), 4_999),
      "\r",
      "\n",
    ]);
    assertEquals(ok.status, 200, ok.raw.slice(0, 300));
    assertEquals(ok.body, "ok");
    // No end either: the head timeout (30 s) would answer after the 10 s this waits.
    const bare = await send(["GET /x HTTP/1.1\r\nHost: a.example\r\nX-A: b", "\nX-B: c\r\n"]);
    assertEquals(bare.status, 400, bare.raw.slice(0, 300));
    assertEquals(up.paths, ["/x"]);
    const upstreamBare = await rawGet(g.url(), "/bare", "a.example", [], 10_000);
    assertEquals(upstreamBare.status, 502, upstreamBare.raw.slice(0, 300));
  } finally {
    await g.close();
    up.close();
  }
});

Deno.test("chunked bodies trickled across reads: size and trailer lines split anywhere decode whole", async () => {
  // The search for a line's end resumes where the last read's stopped: a CR LF split between
  // reads, or a line whose end is in a later read, is where it can go wrong.
  const up = startUpstream(async (req) => new Response(await req.text()));
  const g = await startGateway(proxyAllConfig(up.url));
  const u = new URL(g.url());
  try {
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    const enc = new TextEncoder();
    const ext = `;e=${"v".repeat(3_000)}`;
    const trailer = `x-t: ${"t".repeat(40_000)}`;
    await trickle((s) => conn.write(enc.encode(s)), [
      "POST /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
      "3\r",
      "\nabc\r\n1",
      `0${ext.slice(0, 1_000)}`,
      `${ext.slice(1_000)}\r`,
      `\n${"d".repeat(16)}\r\n0\r\n`,
      ...cut(trailer, 9_999),
      "\r",
      "\n\r",
      "\n",
    ]);
    const res = parseResponse((await readUntilClose(conn, 10_000)).text);
    assertEquals(res.status, 200, res.raw.slice(0, 300));
    assertEquals(res.body, `abc${"d".repeat(16)}`);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("a request body of 100k one-byte chunks reaches the upstream whole; bad framing after them is 400", async () => {
  // The data of every buffered chunk is taken in one read: their order and the framing error
  // that may end them are what can go wrong.
  const up = startUpstream(async (req) => new Response(await req.text()));
  const g = await startGateway(proxyAllConfig(up.url));
  const u = new URL(g.url());
  const send = async (body: string) => {
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    const bytes = new TextEncoder().encode(
      "POST /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n" +
        `Transfer-Encoding: chunked\r\n\r\n${body}`,
    );
    const read = readUntilClose(conn, 10_000);
    try {
      for (let i = 0; i < bytes.length;) i += await conn.write(bytes.subarray(i));
    } catch {
      // Refused before it was all sent: the answer says why.
    }
    return parseResponse((await read).text);
  };
  try {
    const letters = "abcdefghijklmnopqrstuvwxyz";
    let chunks = "";
    let data = "";
    for (let i = 0; i < 100_000; i++) {
      // Now and then a longer chunk, so a piece may end inside one.
      const piece = i % 1000 === 999 ? letters : letters[i % 26]!;
      chunks += `${piece.length.toString(16)}\r\n${piece}\r\n`;
      data += piece;
    }
    const ok = await send(`${chunks}0\r\nx-t: 1\r\n\r\n`);
    assertEquals(ok.status, 200, ok.raw.slice(0, 300));
    assertEquals(ok.body.length, data.length);
    assertEquals(ok.body === data, true);
    const bad = await send(`${chunks}zz\r\nq\r\n0\r\n\r\n`);
    assertEquals(bad.status, 400, bad.raw.slice(0, 300));
    assertEquals(bad.body.includes("Invalid chunk size"), true, bad.body);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("a query of 32k pairs is read for a route's match, an API key and a template, the key stripped", async () => {
  let seen = { path: "", head: "" };
  const up = startRawUpstream(async (x) => {
    seen = { path: x.path, head: x.head };
    await x.write("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    x.close();
  });
  const g = await startGateway(longQueryConfig(
    up.url,
    `  - { name: matched, match: { path: /m, query: { v: "1" } }, upstream: a }
  - name: keyed
    match: { path: /k }
    upstream: a
    auth: [keys]
    transform: { request: { headers: { set: { X-Q: "\${query.q}" } } } }
`,
  ));
  try {
    // Pairs without a value, as URLSearchParams parsed them: two strings and an array each.
    const pairs = "a&".repeat(32_000);
    const matched = await rawGet(g.url(), `/m?${pairs}v=1`, "a.example");
    assertEquals(matched.status, 204, matched.body);
    assertEquals(seen.path, `/m?${pairs}v=1`);
    const repeated = await rawGet(g.url(), `/m?v=1&${pairs}v=1`, "a.example");
    assertEquals(repeated.status, 400, repeated.body);
    assertEquals(JSON.parse(repeated.body).error.message, "Repeated query parameter v");

    const half = "a&".repeat(16_000);
    const keyed = await rawGet(
      g.url(),
      `/k?${half}q=a+b%21&api%5Fkey=k-team-a-0123456789&${half}z`,
      "a.example",
    );
    assertEquals(keyed.status, 204, keyed.body);
    assertEquals(seen.path, `/k?${half}q=a+b%21&${half}z`);
    assertEquals(seen.head.split("\r\n").includes("x-q: a b!"), true, seen.head.slice(-300));
    const wrong = await rawGet(g.url(), `/k?${pairs}api_key=wrong`, "a.example");
    assertEquals(wrong.status, 401, wrong.body);
  } finally {
    await g.close();
    up.close();
  }
});
