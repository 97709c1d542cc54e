/** The streaming proxy through a real listener: headers, errors, WebSocket, SSE, balancing. */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { closedPort, echo, type Received, startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { parseResponse, rawRequest, readUntilClose } from "../helpers/raw.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { assertEchoes } from "../helpers/websocket.ts";
import { closeQuietly, writeAllTo } from "../../lib/proxy/http1/socket_io.ts";
import { gatewayOfEachKind } from "../helpers/listener_kinds.ts";
import { startFlaky } from "../resilience/flaky.ts";

async function single(
  upstreamUrl: string,
  fn: (g: TestGateway) => Promise<void>,
  route = "",
  extra = "",
): Promise<void> {
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${upstreamUrl}" } ] }
${extra}
routes:
  - { name: all, match: { path: / }, upstream: a ${route} }
`));
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

Deno.test("proxy: hop-by-hop and Connection-named headers are stripped both ways", async () => {
  const up = startUpstream(() =>
    new Response("ok", {
      headers: {
        "connection": "x-upstream-private",
        "x-upstream-private": "secret",
        "keep-alive": "timeout=5",
        "x-end-to-end": "kept",
      },
    })
  );
  try {
    await single(up.url, async (g) => {
      const res = await rawRequest(g.url(), [
        "GET /p HTTP/1.1",
        "Host: gw.test",
        "Connection: close, X-Secret-Hop",
        "X-Secret-Hop: must-not-pass",
        "Keep-Alive: timeout=10",
        "TE: trailers",
        "Proxy-Authorization: Basic abc",
        "Proxy: http://evil.test:8080",
        "Proxy-Tenant: other",
        "Proxyish: kept",
        "Upgrade-Insecure-Requests: 1",
        "X-Repeated: one",
        "X-Repeated: two",
      ]);
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("x-end-to-end"), "kept");
      assertEquals(res.headers.get("x-upstream-private"), null);
      assertEquals(res.headers.get("keep-alive"), null);
      const seen = up.received[0]!.headers;
      assertEquals(seen.get("x-secret-hop"), null);
      assertEquals(seen.get("keep-alive"), null);
      assertEquals(seen.get("te"), null);
      assertEquals(seen.get("proxy-authorization"), null);
      // Only three Proxy- names were removed: httpoxy's `Proxy` reached the upstream.
      assertEquals(seen.get("proxy"), null);
      assertEquals(seen.get("proxy-tenant"), null);
      assertEquals(seen.get("proxyish"), "kept");
      assertEquals(seen.get("upgrade-insecure-requests"), "1");
      assertEquals(seen.get("x-repeated"), "one, two");
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: a repeated request field reaches the upstream as the lines the client sent", async () => {
  const up = startFlaky();
  try {
    await single(up.url, async (g) => {
      const res = await rawRequest(g.url(), [
        "GET /p HTTP/1.1",
        "Host: gw.test",
        "Cookie: a=1",
        "X-Repeated: one",
        "Cookie: b=2",
        "X-Repeated: two",
        "Connection: close",
      ]);
      assertEquals(res.status, 200);
      const lines = up.received[0]!.head.split("\r\n");
      assertEquals(lines.filter((l) => /^cookie:/i.test(l)), ["cookie: a=1", "cookie: b=2"]);
      assertEquals(lines.filter((l) => /^x-repeated:/i.test(l)), [
        "x-repeated: one",
        "x-repeated: two",
      ]);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: Via names the protocol version the request came in, on the own and the node:https listeners", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-via-" });
  const up = startUpstream();
  const { g, connect } = await gatewayOfEachKind(dir, up.url, ["plain", "tls13"]);
  try {
    for (const [name, open] of Object.entries(connect)) {
      for (const version of ["1.0", "1.1"]) {
        const conn = await open();
        await writeAllTo(
          conn,
          new TextEncoder().encode(
            `GET /v HTTP/${version}\r\nHost: gw\r\nVia: 1.0 corp-proxy\r\nConnection: close\r\n\r\n`,
          ),
        );
        const res = parseResponse((await readUntilClose(conn, 5_000)).text);
        assertEquals(res.status, 200, `${name}, HTTP/${version}`);
        const seen = JSON.parse(res.body).headers as Record<string, string>;
        assertEquals(seen["via"], `1.0 corp-proxy, ${version} gateway`, `${name}, HTTP/${version}`);
      }
    }
  } finally {
    await g.close();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy: X-Forwarded-*, Via, request id and traceparent", async () => {
  const up = startUpstream();
  try {
    await single(up.url, async (g) => {
      // An untrusted peer's forwarded headers are replaced, never extended.
      const res = await fetch(`${g.url()}/q?a=1&a=2&b=%20`, {
        headers: {
          "x-forwarded-for": "6.6.6.6",
          "x-forwarded-host": "spoofed.example",
          "via": "1.0 corp-proxy",
          "x-request-id": "client-chosen-id",
          "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          "tracestate": "vendor=1",
        },
      });
      const body = await res.json();
      assertEquals(body.url, "/q?a=1&a=2&b=%20");
      const h = body.headers as Record<string, string>;
      assertEquals(h["x-forwarded-for"], "127.0.0.1");
      assertEquals(h["x-forwarded-proto"], "http");
      assertMatch(h["x-forwarded-host"]!, /^127\.0\.0\.1:\d+$/);
      assertEquals(h["via"], "1.0 corp-proxy, 1.1 gateway");
      // Request id: a well-formed incoming one is propagated up and back.
      assertEquals(res.headers.get("x-request-id"), "client-chosen-id");
      assertEquals(h["x-request-id"], "client-chosen-id");
      // Trace context continues the caller's trace with a new parent span.
      assertMatch(h["traceparent"]!, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
      assertOk(!h["traceparent"]!.includes("b7ad6b7169203331"));
      assertEquals(h["tracestate"], "vendor=1");
      // Without a traceparent, a new trace starts.
      const fresh = await (await fetch(`${g.url()}/`)).json();
      // Sampled, and random-trace-id: every byte of the new trace id is random.
      assertMatch(fresh.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: traceparent flags other than sampled and random are zeroed; a tracestate over 512 characters is cut, over 32 members dropped", async () => {
  const up = startUpstream();
  try {
    await single(up.url, async (g) => {
      const sent = async (flags: string, tracestate: string) => {
        const res = await fetch(`${g.url()}/`, {
          headers: {
            traceparent: `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-${flags}`,
            tracestate,
          },
        });
        const h = (await res.json()).headers as Record<string, string>;
        return [h["traceparent"]!.slice(-2), h["tracestate"] ?? null];
      };
      const members = (n: number, value = "v") =>
        Array.from({ length: n }, (_, i) => `k${i}=${value}`).join(",");
      // Level 2 defines 02, random-trace-id: kept with the trace id it describes.
      assertEquals(await sent("ff", "a=1"), ["03", "a=1"]);
      assertEquals(await sent("00", "a=1"), ["00", "a=1"]);
      assertEquals(await sent("02", "a=1"), ["02", "a=1"]);
      assertEquals(await sent("03", "a=1"), ["03", "a=1"]);
      assertEquals(await sent("fe", "a=1"), ["02", "a=1"]);
      assertEquals(await sent("fc", "a=1"), ["00", "a=1"]);
      assertEquals(await sent("01", members(32)), ["01", members(32)]);
      assertEquals(await sent("01", members(33)), ["01", null]);
      assertEquals(await sent("01", members(500)), ["01", null]);
      // Over 512 characters: cut the spec's way (W3C Trace Context §3.3.1.5), whole entries,
      // those over 128 characters first (from the end), then from the end.
      assertEquals(await sent("01", members(2, "x".repeat(300))), ["01", `k0=${"x".repeat(300)}`]);
      const big = (c: string) => c.repeat(200);
      assertEquals(
        await sent(
          "01",
          `congo=t61rcWkgMzE,a=${big("x")}, rojo=00f067aa0ba902b7,b=${big("y")},c=${big("z")}`,
        ),
        ["01", `congo=t61rcWkgMzE,a=${big("x")},rojo=00f067aa0ba902b7,b=${big("y")}`],
      );
      const thirty = Array.from(
        { length: 20 },
        (_, i) => `a${String(i).padStart(2, "0")}=${"v".repeat(26)}`,
      );
      assertEquals(await sent("01", thirty.join(",")), ["01", thirty.slice(0, 16).join(",")]);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: request ids generated when untrusted or malformed; preserve_host", async () => {
  const up = startUpstream();
  const g = await startGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
server: { trust_request_id: false, request_id_header: X-Correlation-Id }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a, preserve_host: true }
`);
  try {
    const res = await fetch(`${g.url()}/`, { headers: { "x-correlation-id": "abc-123" } });
    const id = res.headers.get("x-correlation-id")!;
    assertMatch(id, /^[0-9a-f-]{36}$/);
    const body = await res.json();
    assertEquals(body.headers["x-correlation-id"], id);
    assertEquals(body.headers.host, new URL(g.url()).host);
  } finally {
    await g.close();
    await up.close();
  }
  // With the default (trusted), an id with characters outside the safe set is still replaced.
  await single(up.url, async (g2) => {
    const bad = await fetch(`${g2.url()}/`, { headers: { "x-request-id": "a b<c>" } });
    assertOk(bad.headers.get("x-request-id") !== "a b<c>");
    await bad.body?.cancel();
  });
});

Deno.test("proxy: refused upstream is 502, a slow one 504", async () => {
  await single(`http://127.0.0.1:${closedPort()}`, async (g) => {
    await assertError(await fetch(`${g.url()}/x`), 502, "bad_gateway");
  });
  const slow = startUpstream(async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return new Response("late");
  });
  try {
    await single(slow.url, async (g) => {
      await assertError(await fetch(`${g.url()}/x`), 504, "upstream_timeout");
    }, ", timeout: { first_byte_ms: 200 }");
  } finally {
    await slow.close();
  }
});

/** A body that takes 300 ms to arrive: the gateway asks for the client's signal before its end. */
function slowBody(): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let sent = 0;
  return new ReadableStream({
    async pull(c) {
      if (sent++ === 0) return c.enqueue(enc.encode("part one, "));
      await new Promise((r) => setTimeout(r, 300));
      c.enqueue(enc.encode("part two"));
      c.close();
    },
  });
}

/**
 * An upstream that never answers, on raw TCP: what it has read so far, and
 * whether the gateway closed the connection (a Deno.serve upstream, once it had
 * read a POST's body, did not report the gateway's abort).
 */
function startSilentUpstream() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let text = "";
  let closed!: () => void;
  const gatewayClosed = new Promise<void>((r) => (closed = r));
  (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(16 * 1024);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) {
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      closed();
    } finally {
      conn.close();
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    received: () => text,
    gatewayClosed,
    close: () => listener.close(),
  };
}

// With a body, the client is watched once the body has all been read.
for (const withBody of [false, true]) {
  const name = withBody ? "POST with a slow body" : "GET";
  Deno.test(`proxy: a client that goes away aborts the upstream request (${name})`, async () => {
    const up = startSilentUpstream();
    try {
      await single(up.url, async (g) => {
        const ac = new AbortController();
        const init: RequestInit = withBody
          ? { signal: ac.signal, method: "POST", body: slowBody(), duplex: "half" } as RequestInit
          : { signal: ac.signal };
        const pending = fetch(`${g.url()}/hang`, init).catch(() => null);
        const sent = withBody ? "part two" : "\r\n\r\n";
        while (!up.received().includes(sent)) await new Promise((r) => setTimeout(r, 10));
        ac.abort();
        await pending;
        const timeout = new Promise<string>((r) => setTimeout(() => r("timeout"), 3000));
        assertEquals(
          await Promise.race([up.gatewayClosed.then(() => "aborted"), timeout]),
          "aborted",
        );
      });
    } finally {
      up.close();
    }
  });
}

Deno.test("proxy: an upstream's static headers replace the client's copies", async () => {
  const up = startUpstream();
  const g = await startGateway(baseConfig(`
upstreams:
  a:
    targets: [ { url: "${up.url}" } ]
    headers: { X-Upstream-Secret: real-secret, X-Gateway-Verified: "yes" }
routes:
  - { name: all, match: { path: / }, upstream: a }
`));
  try {
    const res = await fetch(`${g.url()}/p`, {
      headers: {
        "x-gateway-verified": "no-but-trust-me",
        "X-Upstream-Secret": "guess",
        "x-other": "kept",
      },
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    // The client's lines went first: a reader of the first value, or of the joined ones, trusted them.
    const seen = up.received[0]!.headers;
    assertEquals(seen.get("x-gateway-verified"), "yes");
    assertEquals(seen.get("x-upstream-secret"), "real-secret");
    assertEquals(seen.get("x-other"), "kept");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("proxy: WebSocket upgrade relays messages both ways", async () => {
  const up = startUpstream((req) => {
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "chat" });
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
  try {
    await single(up.url, async (g) => {
      const ws = new WebSocket(`${g.url().replace("http", "ws")}/ws`, ["chat", "other"]);
      const got: string[] = [];
      const done = new Promise<void>((resolve, reject) => {
        ws.onopen = () => {
          ws.send("one");
          ws.send("two");
        };
        ws.onmessage = (e) => {
          got.push(e.data);
          if (got.length === 2) ws.close(1000);
        };
        ws.onclose = () => resolve();
        ws.onerror = () => reject(new Error("websocket error"));
      });
      await done;
      assertEquals(ws.protocol, "chat");
      assertEquals(got, ["echo:one", "echo:two"]);

      // The upstream got the client's key once: its accept is the one for that key (RFC
      // 6455 §1.3's example), which a browser checks (Deno's client does not).
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(new URL(g.url()).port),
      });
      try {
        await assertEchoes(conn, ["Sec-WebSocket-Protocol: chat"]);
      } finally {
        closeQuietly(conn);
      }
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: a WebSocket upgrade the upstream declines gets its answer, body included; a dead upstream 502", async () => {
  const up = startUpstream(() => new Response("no sockets here", { status: 403 }));
  const handshake = (path: string) => [
    `GET ${path} HTTP/1.1`,
    "Host: localhost",
    "Connection: Upgrade, close", // close: the raw reader stops at the end of the answer
    "Upgrade: websocket",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
  ];
  try {
    await single(up.url, async (g) => {
      const declined = await rawRequest(g.url(), handshake("/ws"));
      assertEquals(declined.status, 403);
      assertEquals(declined.body, "no sockets here");
      assertEquals(up.received.length, 1);
    });
    await single(`http://127.0.0.1:${closedPort()}`, async (g) => {
      const dead = await rawRequest(g.url(), handshake("/ws"));
      assertEquals(dead.status, 502);
      assertMatch(dead.body, /"code":"bad_gateway"/);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: an Upgrade the Connection field does not name is a plain GET, and no WebSocket is opened upstream", async () => {
  let upgrades = 0;
  const up = startUpstream((req) => {
    if (req.headers.get("upgrade") === null) return new Response("plain");
    upgrades++;
    return Deno.upgradeWebSocket(req).response;
  });
  try {
    await single(up.url, async (g) => {
      // Before, the gateway opened a WebSocket upstream, failed the client's side with a
      // 500 and left the upstream one open.
      const res = await rawRequest(g.url(), [
        "GET /ws HTTP/1.1",
        "Host: localhost",
        "Connection: close",
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
      ]);
      assertEquals([res.status, res.body], [200, "plain"]);
      assertEquals(upgrades, 0);
      assertEquals(up.received.length, 1);
      assertEquals(up.received[0]!.headers.get("upgrade"), null);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: server-sent events stream; the first event arrives before the upstream ends", async () => {
  let finish!: () => void;
  const upstreamDone = new Promise<void>((r) => (finish = r));
  const up = startUpstream(() => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(enc.encode("data: first\n\n"));
        await upstreamDone;
        c.enqueue(enc.encode("data: last\n\n"));
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  try {
    await single(up.url, async (g) => {
      const res = await fetch(`${g.url()}/events`);
      assertEquals(res.headers.get("content-type"), "text/event-stream");
      const reader = res.body!.getReader();
      const first = await reader.read();
      assertEquals(new TextDecoder().decode(first.value), "data: first\n\n");
      finish();
      let rest = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        rest += new TextDecoder().decode(r.value);
      }
      assertEquals(rest, "data: last\n\n");
    });
  } finally {
    finish();
    await up.close();
  }
});

Deno.test("proxy: bodies stream both ways with and without a length", async () => {
  const up = startUpstream(async (req: Request, _r: Received) => {
    const bytes = new Uint8Array(await req.arrayBuffer());
    return new Response(bytes.slice().reverse(), { headers: { "x-len": String(bytes.length) } });
  });
  try {
    await single(up.url, async (g) => {
      const payload = new Uint8Array(300_000).map((_, i) => i % 251);
      const res = await fetch(`${g.url()}/up`, { method: "POST", body: payload });
      assertEquals(res.headers.get("x-len"), "300000");
      const back = new Uint8Array(await res.arrayBuffer());
      assertEquals(back[0], payload[payload.length - 1]);
      assertEquals(back.length, payload.length);
      // A chunked upload (no Content-Length).
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(1000).fill(i));
          c.close();
        },
      });
      const chunked = await fetch(`${g.url()}/up`, { method: "PUT", body: stream });
      assertEquals(chunked.headers.get("x-len"), "10000");
      await chunked.body?.cancel();
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: an empty POST reaches the upstream with Content-Length: 0, a GET with none", async () => {
  const up = startUpstream();
  try {
    await single(up.url, async (g) => {
      for (const [method, body] of [["POST", ""], ["PUT", undefined], ["GET", undefined]]) {
        await (await fetch(`${g.url()}/empty`, { method, ...(body === undefined ? {} : { body }) }))
          .body?.cancel();
      }
      // Some upstreams answer a POST without a length 411 (RFC 9110 §8.6: send it).
      assertEquals(up.received.map((r) => [r.method, r.headers.get("content-length")]), [
        ["POST", "0"],
        ["PUT", "0"],
        ["GET", null],
      ]);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: a body sent with GET is read and dropped, not forwarded; the request behind it is served", async () => {
  const up = startUpstream();
  try {
    await single(up.url, async (g) => {
      const host = new URL(g.url()).host;
      const u = new URL(g.url());
      const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
      await conn.write(new TextEncoder().encode(
        `GET /with-body HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 27\r\n\r\n` +
          `GET /smuggled HTTP/1.1\r\n\r\n` +
          `GET /next HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ));
      const answers = (await readUntilClose(conn, 5000)).text.split("HTTP/1.1 ").slice(1);
      assertEquals(answers.map((a) => a.slice(0, 3)), ["200", "200"]);
      // The body has no meaning on GET (RFC 9110 §9.3.1): the upstream gets neither it nor its length.
      assertEquals(up.received.map((r) => [r.url, r.headers.get("content-length")]), [
        ["/with-body", null],
        ["/next", null],
      ]);
    });
  } finally {
    await up.close();
  }
});

Deno.test("proxy: a streamed body keeps its length; HEAD carries it; a short body ends the response short", async () => {
  const SIZE = 1_000_000;
  const up = startUpstream((req) => {
    let left = SIZE;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (left === 0) return c.close();
        const n = Math.min(left, 64 * 1024);
        c.enqueue(new Uint8Array(n).fill(7));
        left -= n;
      },
    }, { highWaterMark: 0 });
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { "content-length": String(SIZE), "content-type": "application/octet-stream" },
    });
  });
  // Promises 100000 bytes, sends 7 and drops the connection.
  const breaksOff = startFlaky(() => "truncate");
  try {
    await single(up.url, async (g) => {
      const res = await fetch(`${g.url()}/download`);
      assertEquals(res.headers.get("content-length"), String(SIZE));
      assertEquals(res.headers.get("transfer-encoding"), null);
      assertEquals((await res.arrayBuffer()).byteLength, SIZE);

      const head = await rawRequest(g.url(), [
        "HEAD /download HTTP/1.1",
        "Host: x",
        "Connection: close",
      ]);
      assertEquals(head.status, 200);
      assertEquals(head.headers.get("content-length"), String(SIZE));
      assertEquals(head.body, "");
    });
    await single(breaksOff.url, async (g) => {
      // The client is told the full length, gets less, then the close: it can tell.
      const short = await rawRequest(g.url(), ["GET /short HTTP/1.1", "Host: x"]);
      assertEquals(short.status, 200);
      assertEquals(short.headers.get("content-length"), "100000");
      assertEquals(short.body, "partial");
    });
  } finally {
    await up.close();
    await breaksOff.close();
  }
});

Deno.test("proxy: balancing spreads over targets; hash keeps a key on one target", async () => {
  const a = startUpstream((_q, r) => Response.json({ who: "a", url: r.url }));
  const b = startUpstream((_q, r) => Response.json({ who: "b", url: r.url }));
  const g = await startGateway(baseConfig(`
upstreams:
  rr: { targets: [ { url: "${a.url}" }, { url: "${b.url}", weight: 3 } ] }
  lc: { balance: least_conn, targets: [ { url: "${a.url}" }, { url: "${b.url}" } ] }
  rnd: { balance: random, targets: [ { url: "${a.url}" }, { url: "${b.url}" } ] }
  h: { balance: hash, hash_on: "header:X-User", targets: [ { url: "${a.url}" }, { url: "${b.url}" } ] }
routes:
  - { name: rr, match: { path: /rr }, upstream: rr }
  - { name: lc, match: { path: /lc }, upstream: lc }
  - { name: rnd, match: { path: /rnd }, upstream: rnd }
  - { name: h, match: { path: /h }, upstream: h }
`));
  try {
    const count = async (path: string, n: number, headers: Record<string, string> = {}) => {
      const c: Record<string, number> = { a: 0, b: 0 };
      for (let i = 0; i < n; i++) {
        c[(await (await fetch(`${g.url()}${path}`, { headers })).json()).who]!++;
      }
      return c;
    };
    assertEquals(await count("/rr", 8), { a: 2, b: 6 }, "smooth weighted round robin");
    const lc = await count("/lc", 10);
    assertOk(lc.a! > 0 && lc.b! > 0);
    const rnd = await count("/rnd", 60);
    assertOk(rnd.a! > 5 && rnd.b! > 5);
    for (const user of ["u1", "u2", "u3", "u4"]) {
      const c = await count("/h", 5, { "x-user": user });
      assertOk(c.a === 5 || c.b === 5, `user ${user} split: ${JSON.stringify(c)}`);
    }
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});

Deno.test("proxy: keep-alive connections to the upstream are reused", async () => {
  const peers = new Set<string>();
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req, info) => {
      peers.add(`${info.remoteAddr.hostname}:${info.remoteAddr.port}`);
      return echo(req, { method: req.method, url: "/", headers: req.headers });
    },
  );
  try {
    await single(`http://127.0.0.1:${server.addr.port}`, async (g) => {
      for (let i = 0; i < 20; i++) await (await fetch(`${g.url()}/k`)).body?.cancel();
      assertEquals(peers.size, 1);
    });
  } finally {
    ac.abort();
    await server.finished;
  }
});

/**
 * An upstream that answers once on a connection, then reads the next request
 * and closes without answering: a keep-alive race the gateway cannot see coming.
 */
function startClosingAfterOne(
  firstAnswerDelayMs = 0,
): { url: string; connections: () => number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const serveConn = async (conn: Deno.Conn, n: number) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (let served = 0;; served++) {
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const got = await conn.read(buf);
          if (got === null) return;
          head += new TextDecoder().decode(buf.subarray(0, got));
        }
        if (served === 1) return; // read the second request, answer nothing
        await new Promise((r) => setTimeout(r, firstAnswerDelayMs));
        const body = `c${n}`;
        await conn.write(
          new TextEncoder().encode(
            `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
          ),
        );
      }
    } finally {
      conn.close();
    }
  };
  (async () => {
    for await (const conn of listener) serveConn(conn, ++connections).catch(() => {});
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => connections,
    close: () => listener.close(),
  };
}

Deno.test("proxy: a reused connection that dies unanswered is retried once on a fresh one, if replayable", async () => {
  const up = startClosingAfterOne();
  try {
    await single(up.url, async (g) => {
      const first = await fetch(`${g.url()}/a`);
      assertEquals([first.status, await first.text()], [200, "c1"]);
      const second = await fetch(`${g.url()}/b`);
      assertEquals([second.status, await second.text()], [200, "c2"], "a GET goes again, fresh");
      assertEquals(up.connections(), 2);
      // A streamed body cannot be sent twice: the failure is the answer.
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("once"));
          c.close();
        },
      });
      const post = await fetch(`${g.url()}/c`, { method: "POST", body });
      await assertError(post, 502, "bad_gateway");
      assertEquals(up.connections(), 2);
    });
  } finally {
    up.close();
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("proxy: first_byte_ms counts from the resend on a fresh connection, not from the request that died", async () => {
  // The reused connection takes the request and dies unanswered after 300 ms; the fresh one
  // answers 200 ms after the resend. Each wait is within first_byte_ms (400 ms): until
  // 2026-12-08 the resend's wait counted from the first sending, a 504 at 400 ms.
  const up = startRawUpstream(async (x) => {
    if (x.served === 1) {
      await sleep(300);
      return x.close();
    }
    if (x.path === "/again") await sleep(200);
    await x.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  });
  try {
    await single(up.url, async (g) => {
      assertEquals(await (await fetch(`${g.url()}/warm`)).text(), "ok");
      const res = await fetch(`${g.url()}/again`);
      assertEquals([res.status, await res.text()], [200, "ok"]);
      assertEquals(up.paths, ["/warm", "/again", "/again"]);
    }, ", timeout: { first_byte_ms: 400 }");
  } finally {
    up.close();
  }
});

Deno.test("proxy: the retry after a dead reused connection opens a new one, not another parked one", async () => {
  // Answers slowly enough that two requests at once warm two connections.
  const up = startClosingAfterOne(100);
  try {
    await single(up.url, async (g) => {
      const warm = await Promise.all([fetch(`${g.url()}/a`), fetch(`${g.url()}/b`)]);
      assertEquals((await Promise.all(warm.map((r) => r.text()))).sort(), ["c1", "c2"]);
      // Both parked connections die on their next request: the retry must not take the other.
      const res = await fetch(`${g.url()}/c`);
      assertEquals([res.status, await res.text()], [200, "c3"]);
      assertEquals(up.connections(), 3);
    });
  } finally {
    up.close();
  }
});

Deno.test("proxy: a WebSocket handshake on a reused connection that dies unanswered goes again on a fresh one", async () => {
  // The handshake took a parked connection the upstream was closing, and the client got a 502
  // where a new connection would have been switched.
  const up = startRawUpstream(async (x) => {
    if (x.served > 0) return x.close(); // reads the next request, answers nothing
    if (x.path === "/warm") return await x.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    await x.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    x.close();
  });
  try {
    await single(up.url, async (g) => {
      assertEquals(await (await fetch(`${g.url()}/warm`)).text(), "ok");
      const res = await rawRequest(g.url(), [
        "GET /ws HTTP/1.1",
        "Host: localhost",
        "Connection: Upgrade, close", // close: the raw reader stops at the end of a refusal
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
      ]);
      assertEquals(res.status, 101, res.raw);
      assertEquals(res.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
      assertEquals(up.paths, ["/warm", "/ws", "/ws"]);
      assertEquals(up.connections(), 2);
    });
  } finally {
    up.close();
  }
});

Deno.test("proxy: a buffered POST on a connection that dies unanswered is answered 502, not sent twice", async () => {
  // A request JSON transform hands the upstream client the rewritten body as bytes (replayable).
  const route = `, transform: { request: { json: { remove: [secret] } } }`;
  for (const [method, resent] of [["PUT", true], ["POST", false]] as const) {
    const up = startClosingAfterOne();
    const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a ${route} }
`));
    try {
      const warm = await fetch(`${g.url()}/warm`);
      assertEquals(await warm.text(), "c1");
      const res = await fetch(`${g.url()}/order`, {
        method,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ item: 1, secret: "s" }),
      });
      if (resent) {
        assertEquals([res.status, await res.text()], [200, "c2"], `${method} goes again, fresh`);
        assertEquals(up.connections(), 2);
      } else {
        await assertError(res, 502, "bad_gateway");
        assertEquals(up.connections(), 1, `${method} is not sent again`);
      }
    } finally {
      await g.close();
      up.close();
    }
  }
});

Deno.test("proxy: a POST whose head got out on a reused connection is not sent twice when its body cannot follow", async () => {
  // An upstream may act on a head alone. This one takes the order from it and goes away without
  // reading the body, whose write then fails: the gateway sent the POST again on a fresh
  // connection, and the order was placed twice (RFC 9110 §9.2.2).
  let orders = 0;
  const up = startRawUpstream(async (x) => {
    if (x.path === "/warm") return await x.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    if (++orders === 1) return x.close();
    await x.write("HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nc2");
  });
  // A body over the loopback socket buffers, held in memory (replayable) by a JSON transform.
  const limit = 64 * 1024 * 1024;
  const route =
    `, transform: { request: { json: { remove: [secret] }, max_body_bytes: ${limit} } }`;
  try {
    await single(
      up.url,
      async (g) => {
        assertEquals(await (await fetch(`${g.url()}/warm`)).text(), "ok");
        const res = await fetch(`${g.url()}/order`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ item: 1, secret: "s", pad: "x".repeat(16 * 1024 * 1024) }),
        });
        await assertError(res, 502, "bad_gateway");
        assertEquals(orders, 1, "the POST reached the upstream once");
      },
      route,
      `security: { max_body_bytes: ${limit} }`,
    );
  } finally {
    up.close();
  }
});

/** A loopback upstream that serves each connection with `serveConn`, which closes it. */
function tcpUpstream(
  serveConn: (conn: Deno.Conn) => Promise<void>,
): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) serveConn(conn).catch(() => {});
  })().catch(() => {});
  return { url: `http://127.0.0.1:${listener.addr.port}`, close: () => listener.close() };
}

/** An upstream that answers each request with the raw head its path names, and a body "ok". */
function startRawHeads(heads: Record<string, string>): { url: string; close(): void } {
  const serveConn = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      let pending = "";
      for (;;) {
        const got = await conn.read(buf);
        if (got === null) return;
        pending += new TextDecoder().decode(buf.subarray(0, got));
        const end = pending.indexOf("\r\n\r\n");
        if (end < 0) continue;
        const path = pending.slice(0, end).split(" ")[1] ?? "";
        pending = pending.slice(end + 4);
        const bytes = Uint8Array.from(
          `${heads[path] ?? "HTTP/1.1 404 Not Found"}\r\ncontent-length: 2\r\n\r\nok`,
          (c) => c.charCodeAt(0),
        );
        await conn.write(bytes);
      }
    } finally {
      conn.close();
    }
  };
  return tcpUpstream(serveConn);
}

Deno.test("proxy: an upstream's malformed response head is 502 upstream_error; odd but valid ones pass as read", async () => {
  const up = startRawHeads({
    "/version": "HTTP/2 200 OK",
    "/status": "HTTP/1.1 1e2 OK",
    "/short-status": "HTTP/1.1 20 OK",
    "/no-colon": "HTTP/1.1 200 OK\r\nno colon here",
    "/bad-name": "HTTP/1.1 200 OK\r\nbad name: x",
    "/control": "HTTP/1.1 200 OK\r\nx-bell: a\x07b",
    "/padded": "HTTP/1.1 200 OK\r\nx-pad: \t a b \t\r\nx-latin: \xa0x\xa0",
    "/connection":
      "HTTP/1.1 200 OK\r\nConnection: x-hop-a\r\nX-Hop-A: 1\r\nX-Hop-B: 2\r\nConnection: keep-alive, x-hop-b\r\nX-End: 3",
  });
  try {
    await single(up.url, async (g) => {
      for (const path of ["/version", "/status", "/short-status", "/no-colon", "/bad-name"]) {
        await assertError(await fetch(`${g.url()}${path}`), 502, "upstream_error");
      }
      await assertError(await fetch(`${g.url()}/control`), 502, "upstream_error");

      const padded = await fetch(`${g.url()}/padded`);
      assertEquals([padded.status, await padded.text()], [200, "ok"]);
      assertEquals(padded.headers.get("x-pad"), "a b", "spaces and tabs go, inner ones stay");
      // Fetch reads field bytes as latin1: 0xA0 is a value byte, not whitespace to trim.
      assertEquals(padded.headers.get("x-latin"), "\xa0x\xa0");

      const conn = await fetch(`${g.url()}/connection`);
      assertEquals([conn.status, await conn.text()], [200, "ok"]);
      assertEquals(conn.headers.get("x-end"), "3");
      assertEquals(conn.headers.get("x-hop-a"), null, "named by the first Connection line");
      assertEquals(conn.headers.get("x-hop-b"), null, "named by the second Connection line");
    });
  } finally {
    up.close();
  }
});

/** Sends a request and its (large) body while reading the answer; write failures are ignored. */
async function uploadReadingAnswer(baseUrl: string, head: string[], body: Uint8Array) {
  const u = new URL(baseUrl);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  const answer = readUntilClose(conn, 5000);
  try {
    await conn.write(new TextEncoder().encode(head.join("\r\n") + "\r\n\r\n"));
    for (let off = 0; off < body.length;) off += await conn.write(body.subarray(off));
  } catch {
    // The gateway answered and closed before taking it all.
  }
  return parseResponse((await answer).text);
}

Deno.test("proxy: an upstream's early answer to an upload it stops reading reaches the client", async () => {
  // Answers as soon as the head is in and closes, the upload unread (RFC 9112 §9.5).
  const up = startRawUpstream(async (x) => {
    await x.write(
      "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big!",
    );
    x.close();
  });
  const size = 4 * 1024 * 1024;
  const post = ["POST /up HTTP/1.1", "Host: localhost", "Connection: close"];
  const sized = new Uint8Array(size).fill(120);
  const piece = `ffff\r\n${"y".repeat(0xffff)}\r\n`;
  const chunked = new TextEncoder().encode(piece.repeat(64) + "0\r\n\r\n");
  try {
    await single(up.url, async (g) => {
      for (let i = 0; i < 3; i++) {
        const withLength = await uploadReadingAnswer(
          g.url(),
          [...post, `Content-Length: ${size}`],
          sized,
        );
        assertEquals([withLength.status, withLength.body], [413, "too big!"], `sized, round ${i}`);
        const withChunks = await uploadReadingAnswer(g.url(), [
          ...post,
          "Transfer-Encoding: chunked",
        ], chunked);
        assertEquals(
          [withChunks.status, withChunks.body],
          [413, "too big!"],
          `chunked, round ${i}`,
        );
      }
      const view = await (await fetch(`${g.admin}/upstreams/a`)).json();
      assertEquals(view.targets[0].in_flight, 0);
    });
  } finally {
    up.close();
  }
});

/** A route whose JSON transform hands the upstream client the body as bytes it holds. */
const HELD_BODY_LIMIT = 64 * 1024 * 1024;
const HELD_BODY_ROUTE =
  `, transform: { request: { json: { remove: [secret] }, max_body_bytes: ${HELD_BODY_LIMIT} } }`;
const HELD_BODY_SECURITY = `security: { max_body_bytes: ${HELD_BODY_LIMIT} }`;

/** A JSON body of about `bytes`, more than the loopback socket buffers take. */
function bigJson(bytes: number): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ item: 1, secret: "s", pad: "x".repeat(bytes) }),
  };
}

Deno.test("proxy: an upstream's early answer to a large body the gateway holds reaches the client", async () => {
  // The body is written whole before the answer is read: the upstream's 413 waited behind a write
  // that failed once it closed, and the client got 502 bad_gateway.
  const up = startRawUpstream(async (x) => {
    await x.write(
      "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big!",
    );
    x.close();
  });
  try {
    await single(
      up.url,
      async (g) => {
        for (let i = 0; i < 3; i++) {
          const res = await fetch(`${g.url()}/up`, bigJson(16 * 1024 * 1024));
          assertEquals([res.status, await res.text()], [413, "too big!"], `round ${i}`);
        }
        const view = await (await fetch(`${g.admin}/upstreams/a`)).json();
        assertEquals(view.targets[0].in_flight, 0);
      },
      HELD_BODY_ROUTE,
      HELD_BODY_SECURITY,
    );
  } finally {
    up.close();
  }
});

/**
 * An upstream that reads the first `slowBytes` of a request's body slowly but steadily (256 KiB,
 * then a pause), the rest at once, then answers how many body bytes it got. Fast at the end, it
 * answers soon after the gateway's last write, whatever the socket buffers held.
 */
function startSlowReader(pauseMs: number, slowBytes: number): { url: string; close(): void } {
  const serveConn = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(256 * 1024);
    let head = "";
    let got = 0;
    try {
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder("latin1").decode(buf.subarray(0, n));
      }
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      got = head.length - head.indexOf("\r\n\r\n") - 4;
      while (got < length) {
        if (got < slowBytes) await new Promise((r) => setTimeout(r, pauseMs));
        const n = await conn.read(buf);
        if (n === null) return;
        got += n;
      }
      const body = `got ${got}`;
      await conn.write(
        new TextEncoder().encode(
          `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        ),
      );
    } finally {
      conn.close();
    }
  };
  return tcpUpstream(serveConn);
}

Deno.test("proxy: first_byte_ms counts from the end of a large held body, not across its upload", async () => {
  // The upstream takes every piece well within first_byte_ms, and the body's first half in
  // several times that: the timer ran from the start of the upload, and the answer was 504.
  const up = startSlowReader(20, 12 * 1024 * 1024);
  try {
    await single(
      up.url,
      async (g) => {
        const init = bigJson(24 * 1024 * 1024);
        const res = await fetch(`${g.url()}/up`, init);
        const sent = (init.body as string).length - `"secret":"s",`.length;
        assertEquals([res.status, await res.text()], [200, `got ${sent}`]);
      },
      `${HELD_BODY_ROUTE}, timeout: { first_byte_ms: 300 }`,
      HELD_BODY_SECURITY,
    );
  } finally {
    up.close();
  }
});
