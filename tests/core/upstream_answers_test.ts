/**
 * What the gateway makes of an upstream's answer, byte for byte: the status
 * line, framing fields and chunked bodies are read strictly (RFC 9112), and
 * whatever is refused is 502 `upstream_error` with the connection let go.
 */
import { assertEquals, assertError } from "../helpers/assert.ts";
import { baseConfig, proxyAllConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawRequest } from "../helpers/raw.ts";
import { type RawExchange, type RawUpstream, startRawUpstream } from "../helpers/raw_upstream.ts";
import { upstreamView } from "../resilience/support.ts";
import { HealthChecker } from "../../lib/resilience/health.ts";
import { healthCheckSchema } from "../../lib/resilience/schema.ts";

/** Answers each path with its bytes: a string, or a script. */
function answering(answers: Record<string, string | ((x: RawExchange) => Promise<void>)>) {
  return startRawUpstream(async (x) => {
    const a = answers[x.path] ?? "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
    if (typeof a === "string") await x.write(a);
    else await a(x);
  });
}

async function through(up: RawUpstream, fn: (g: TestGateway) => Promise<void>): Promise<void> {
  const g = await startGateway(proxyAllConfig(up.url));
  try {
    await fn(g);
  } finally {
    await g.close();
    up.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connections the gateway holds to the upstream right now. */
async function inFlight(g: TestGateway): Promise<number> {
  return (await upstreamView(g, "a")).targets[0].in_flight;
}

const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/**
 * A GET through the gateway, given up after 15 s: a misread framing tends to wait forever.
 * (3 s was too short for a 2 MiB head on a loaded machine.)
 */
function get(g: TestGateway, path: string): Promise<Response> {
  return fetch(`${g.url()}${path}`, { signal: AbortSignal.timeout(15_000) });
}

Deno.test("upstream answers: a control character in the reason phrase is 502 upstream_error, and the connection is let go", async () => {
  const streamedAfterHead = (head: string) => async (x: RawExchange) => {
    await x.write(`${head}\r\ncontent-length: 10\r\n\r\n`);
    await sleep(100);
    await x.write("0123456789");
  };
  const up = answering({
    "/soh": streamedAfterHead("HTTP/1.1 200 A\x01B"),
    "/nul": streamedAfterHead("HTTP/1.1 299 A\x00B"),
    "/del": streamedAfterHead("HTTP/1.1 200 A\x7fB"),
    "/cr": "HTTP/1.1 299 Fi\rne\r\ncontent-length: 2\r\n\r\nhi",
    "/lf": "HTTP/1.1 200 OK\nX-Injected: yes\r\ncontent-length: 2\r\n\r\nhi",
    "/tab-latin": "HTTP/1.1 200 A\tB\xe9\r\ncontent-length: 2\r\n\r\nhi",
  });
  await through(up, async (g) => {
    for (const path of ["/soh", "/nul", "/del", "/cr", "/lf"]) {
      await assertError(await get(g, path), 502, "upstream_error");
    }
    const fine = await get(g, "/tab-latin");
    assertEquals([fine.status, await fine.text()], [200, "hi"], "tabs and obs-text are fine");
    assertEquals(await inFlight(g), 0, "no connection is left lent out");
  });
});

Deno.test("upstream answers: a declined upgrade the runtime cannot answer with is 502 upstream_error, its connection let go", async () => {
  // A status past 599 is read (three digits) but no Response can carry it.
  const up = answering({
    "/ws": async (x) => {
      await x.write("HTTP/1.1 999 Odd\r\ncontent-length: 10\r\n\r\n");
      await sleep(100);
      await x.write("0123456789");
    },
  });
  await through(up, async (g) => {
    const res = await rawRequest(g.url(), [
      "GET /ws HTTP/1.1",
      "Host: localhost",
      "Connection: Upgrade, close",
      "Upgrade: websocket",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
    ]);
    assertEquals(res.status, 502);
    assertEquals(JSON.parse(res.body).error.code, "upstream_error");
    assertEquals(await inFlight(g), 0);
  });
});

Deno.test("upstream answers: a malformed answer to an upgrade, or a 101 naming no protocol, is 502 upstream_error; no answer 502 bad_gateway", async () => {
  const up = answering({
    "/no-upgrade": "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "/malformed": "HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n",
    "/silent": (x) => Promise.resolve(x.close()),
  });
  await through(up, async (g) => {
    const handshake = (path: string) =>
      rawRequest(g.url(), [
        `GET ${path} HTTP/1.1`,
        "Host: localhost",
        "Connection: Upgrade, close",
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
      ]);
    // Both were 502 bad_gateway ("could not be reached"), as if the upstream were down.
    for (const path of ["/no-upgrade", "/malformed"]) {
      const res = await handshake(path);
      assertEquals([res.status, JSON.parse(res.body).error.code], [502, "upstream_error"], path);
    }
    const silent = await handshake("/silent");
    assertEquals([silent.status, JSON.parse(silent.body).error.code], [502, "bad_gateway"]);
    assertEquals(await inFlight(g), 0);
  });
});

Deno.test("upstream answers: the status line is HTTP/1.DIGIT, three digits, then a space or its end", async () => {
  const up = answering({
    "/four-digits": "HTTP/1.1 2000 OK\r\ncontent-length: 2\r\n\r\nhi",
    "/glued": "HTTP/1.1 200OK\r\ncontent-length: 2\r\n\r\nhi",
    "/minor-x": "HTTP/1.x 200 OK\r\ncontent-length: 2\r\n\r\nhi",
    "/no-reason": "HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nhi",
    "/empty-reason": "HTTP/1.1 201 \r\ncontent-length: 2\r\n\r\nhi",
  });
  await through(up, async (g) => {
    for (const path of ["/four-digits", "/glued", "/minor-x"]) {
      await assertError(await get(g, path), 502, "upstream_error");
    }
    const bare = await get(g, "/no-reason");
    assertEquals([bare.status, await bare.text()], [200, "hi"]);
    const empty = await get(g, "/empty-reason");
    assertEquals([empty.status, await empty.text()], [201, "hi"]);
  });
});

Deno.test("upstream answers: a head with bare LF line endings is 502 upstream_error at once", async () => {
  // The upstream keeps the connection open: such a head never ends, and was waited on for
  // the first-byte timeout (60 s), then answered 504.
  const up = answering({
    "/lf": "HTTP/1.1 200 OK\ncontent-length: 2\n\nhi",
    "/mixed": "HTTP/1.1 200 OK\r\ncontent-length: 2\n\r\nhi",
  });
  await through(up, async (g) => {
    for (const path of ["/lf", "/mixed"]) {
      await assertError(await get(g, path), 502, "upstream_error");
    }
  });
});

Deno.test("upstream answers: a head over 1 MiB on a reused connection is 502 upstream_error, the request sent once", async () => {
  const up = answering({
    "/warm": OK,
    "/big": `HTTP/1.1 200 OK\r\nx-big: ${
      "a".repeat(2 * 1024 * 1024)
    }\r\ncontent-length: 2\r\n\r\nhi`,
  });
  await through(up, async (g) => {
    assertEquals(await (await get(g, "/warm")).text(), "ok");
    await assertError(await get(g, "/big"), 502, "upstream_error");
    assertEquals(up.paths, ["/warm", "/big"]);
    assertEquals(up.connections(), 1);
  });
});

Deno.test("upstream answers: Transfer-Encoding other than one `chunked` is 502 upstream_error", async () => {
  const chunked = (te: string) => `HTTP/1.1 200 OK\r\n${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
  const up = answering({
    "/gzip-chunked": chunked("Transfer-Encoding: gzip, chunked"),
    "/chunked-gzip": chunked("Transfer-Encoding: chunked, gzip"),
    "/chunked-chunked": chunked("Transfer-Encoding: chunked, chunked"),
    "/two-lines": chunked("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip"),
    "/gzip-length": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
    "/empty": "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 2\r\n\r\nhi",
    "/identity": "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhi",
    "/upper": chunked("Transfer-Encoding: CHUNKED"),
    "/http10": `HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
  });
  await through(up, async (g) => {
    for (
      const path of [
        "/gzip-chunked",
        "/chunked-gzip",
        "/chunked-chunked",
        "/two-lines",
        "/gzip-length",
        "/empty",
        "/identity",
        "/http10",
      ]
    ) {
      await assertError(await get(g, path), 502, "upstream_error");
    }
    const upper = await get(g, "/upper");
    assertEquals([upper.status, await upper.text()], [200, "hello"]);
    assertEquals(await inFlight(g), 0);
  });
});

Deno.test("upstream answers: a 204 announcing a body does not keep its connection; its late body cannot answer the next request", async () => {
  // RFC 9110 §8.6 and RFC 9112 §6.1 forbid Content-Length and Transfer-Encoding in a 204, whose
  // answer ends at its head (RFC 9112 §6.3). An upstream that sends them anyway tends to send the
  // body too: late, it was read as the answer to the next request sent on that connection.
  const stray = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray";
  const lateBody = (head: string, body: string) => async (x: RawExchange) => {
    await x.write(`HTTP/1.1 204 No Content\r\n${head}\r\n\r\n`);
    await sleep(200);
    await x.write(body);
  };
  const up = answering({
    "/length": lateBody(`content-length: ${stray.length}`, stray),
    "/chunked": lateBody(
      "transfer-encoding: chunked",
      `${stray.length.toString(16)}\r\n${stray}\r\n0\r\n\r\n`,
    ),
    "/empty": "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
    "/next": "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext",
  });
  await through(up, async (g) => {
    for (const path of ["/length", "/chunked"]) {
      const res = await get(g, path);
      assertEquals([res.status, await res.text()], [204, ""], path);
      const next = await get(g, "/next");
      assertEquals([next.status, await next.text()], [200, "next"], `after ${path}`);
    }
    // `Content-Length: 0` is common on a 204 and harmless: that connection is kept.
    const before = up.connections();
    assertEquals((await get(g, "/empty")).status, 204);
    assertEquals(await (await get(g, "/next")).text(), "next");
    assertEquals(up.connections(), before);
  });
});

Deno.test("upstream answers: an empty body (Content-Length: 0) is taken whole; a 205 or a health check keeps its connection", async () => {
  // An empty body was a stream: a 205's is cancelled (the runtime's Response cannot carry one),
  // and so is a health check's, so each such answer cost its upstream connection.
  const up = answering({
    "/reset": "HTTP/1.1 205 Reset Content\r\ncontent-length: 0\r\n\r\n",
    "/health": "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    "/next": "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext",
  });
  await through(up, async (g) => {
    for (let i = 0; i < 3; i++) {
      const res = await get(g, "/reset");
      assertEquals([res.status, res.headers.get("content-length"), await res.text()], [
        205,
        "0",
        "",
      ]);
    }
    const empty = await get(g, "/health");
    assertEquals([empty.status, empty.headers.get("content-length"), await empty.text()], [
      200,
      "0",
      "",
    ]);
    assertEquals(await (await get(g, "/next")).text(), "next");
    assertEquals(up.connections(), 1, "one connection served every answer");
    assertEquals(await inFlight(g), 0);
  });
  const checked = answering({ "/health": "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" });
  const checks = new HealthChecker(
    checked.url,
    healthCheckSchema.parse({ path: "/health" }),
    () => Date.now(),
    () => {},
  );
  try {
    for (let i = 0; i < 3; i++) assertEquals((await checks.check()).ok, true);
    assertEquals(checked.connections(), 1, "the checks share one kept-alive connection");
  } finally {
    await checks.stop();
    checked.close();
  }
});

Deno.test("upstream answers: a Content-Length past 15 digits is 502 upstream_error", async () => {
  const up = answering({
    "/huge": "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhi",
    "/past-2-53": "HTTP/1.1 200 OK\r\nContent-Length: 9007199254740993\r\n\r\nhi",
    "/fifteen": "HTTP/1.1 200 OK\r\nContent-Length: 000000000000002\r\n\r\nhi",
  });
  await through(up, async (g) => {
    await assertError(await get(g, "/huge"), 502, "upstream_error");
    await assertError(await get(g, "/past-2-53"), 502, "upstream_error");
    const fifteen = await get(g, "/fifteen");
    assertEquals([fifteen.status, await fifteen.text()], [200, "hi"]);
  });
});

Deno.test("upstream answers: a malformed chunk-size line or trailer field is 502 upstream_error", async () => {
  const body = (chunks: string) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`;
  const malformed: Record<string, string> = {
    "/space-before": " 5\r\nhello\r\n0\r\n\r\n",
    "/space-after": "5 \r\nhello\r\n0\r\n\r\n",
    "/vt": "5\x0b\r\nhello\r\n0\r\n\r\n",
    "/ff": "\x0c5\r\nhello\r\n0\r\n\r\n",
    "/nbsp": "\xa05\r\nhello\r\n0\r\n\r\n",
    "/bare-cr": "5\r\r\nhello\r\n0\r\n\r\n",
    "/lf-in-ext": "5;a\nb\r\nhello\r\n0\r\n\r\n",
    "/trailer-nul": "5\r\nhello\r\n0\r\nnot a field\x00\r\n\r\n",
  };
  const answers: Record<string, string> = {
    "/ext-and-trailer": body('5;a=b ; c = "q\\"x" ;d\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n'),
  };
  for (const [path, chunks] of Object.entries(malformed)) answers[path] = body(chunks);
  const up = answering(answers);
  await through(up, async (g) => {
    for (const path of Object.keys(malformed)) {
      await assertError(await get(g, path), 502, "upstream_error");
    }
    const fine = await get(g, "/ext-and-trailer");
    assertEquals([fine.status, await fine.text()], [200, "hello"]);
  });
});

Deno.test("upstream answers: a chunk size with leading zeros is its value; one past 12 significant hex digits is 502 upstream_error", async () => {
  // RFC 9112 §7.1: chunk-size is 1*HEXDIG. Counting the zeros against the overflow bound refused
  // `00000000000000005` (17 digits, the value 5) as malformed.
  const body = (chunks: string) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`;
  const up = answering({
    "/zeros": body(`${"0".repeat(16)}5\r\nhello\r\n${"0".repeat(20)}\r\n\r\n`),
    "/huge": body("1000000000000\r\nhello\r\n0\r\n\r\n"),
    "/overflow": body("ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
  });
  await through(up, async (g) => {
    const zeros = await get(g, "/zeros");
    assertEquals([zeros.status, await zeros.text()], [200, "hello"]);
    await assertError(await get(g, "/huge"), 502, "upstream_error");
    await assertError(await get(g, "/overflow"), 502, "upstream_error");
    assertEquals(await inFlight(g), 0);
  });
});

Deno.test("upstream answers: an upstream that stops taking an upload and never answers is 504 after first_byte_ms", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  // Reads the head, then nothing: the body fills the socket buffers and the writes stall.
  const up = startRawUpstream(async (x) => {
    await released;
    x.close();
  });
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ], timeout: { first_byte_ms: 500 } }
routes:
  - { name: all, match: { path: / }, upstream: a }
`));
  try {
    // A streamed body: the first-byte timer waits for its end, which never comes.
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(256 * 1024));
      },
    });
    const res = await fetch(`${g.url()}/upload`, {
      method: "POST",
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await assertError(res, 504, "upstream_timeout");
  } finally {
    release();
    await g.close();
    up.close();
  }
});
