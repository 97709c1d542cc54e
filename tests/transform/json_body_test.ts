/** JSON body rules through a real listener and upstream: requests, responses, limits. */
import { assertEquals, assertError, assertOk } from "../helpers/assert.ts";
import { type Received, startUpstream, type TestServer } from "../helpers/upstream.ts";
import {
  baseConfig,
  startGateway,
  type StartOptions,
  type TestGateway,
} from "../helpers/gateway.ts";
import type { Logger } from "../../lib/observe/logger.ts";
import { rawRequest } from "../helpers/raw.ts";

const ORDER = {
  id: 7,
  internal_id: "int-7",
  customer: { name: "Ada", password_hash: "x" },
  items: [
    { sku: "a", internal_id: "i-1", price: 3 },
    { sku: "b", internal_id: "i-2", price: 4 },
  ],
};

/**
 * An upstream answering `body` with `type` (chunked when the path has
 * `chunked`), recording the request bodies it got.
 */
function jsonUpstream(body: string, type = "application/json") {
  const bodies: string[] = [];
  const up = startUpstream(async (req: Request, r: Received) => {
    bodies.push(await req.text());
    const bytes = new TextEncoder().encode(body);
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 1000) c.enqueue(bytes.slice(i, i + 1000));
        c.close();
      },
    });
    return new Response(r.url.includes("chunked") ? chunked : body, {
      headers: { "content-type": type },
    });
  });
  return { up, bodies };
}

/** Runs `fn` against a gateway with `routes` (YAML list items) in front of `up`, then stops both. */
async function withRoutes(
  up: TestServer,
  routes: string,
  fn: (g: TestGateway) => Promise<void>,
  opts: StartOptions = {},
): Promise<void> {
  const g = await startGateway(
    baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
${routes}`),
    opts,
  );
  try {
    await fn(g);
  } finally {
    await g.close();
    await up.close();
  }
}

Deno.test("transform: response JSON loses nested and array fields, others untouched", async () => {
  const { up } = jsonUpstream(JSON.stringify(ORDER), "application/json; charset=utf-8");
  await withRoutes(
    up,
    `
  - name: orders
    match: { path: / }
    upstream: a
    transform:
      response:
        json:
          remove: [internal_id, customer.password_hash, "items[].internal_id"]
          rename: { "items[].price": amount }
`,
    async (g) => {
      const res = await fetch(`${g.url()}/orders/7`, { headers: { "accept-encoding": "gzip" } });
      assertEquals(res.status, 200);
      assertEquals(await res.json(), {
        id: 7,
        customer: { name: "Ada" },
        items: [{ sku: "a", amount: 3 }, { sku: "b", amount: 4 }],
      });
      // The upstream was asked for an uncompressed body it can be edited in (no field at all
      // would allow any coding).
      assertEquals(up.received[0]!.headers.get("accept-encoding"), "identity");
    },
  );
});

Deno.test("transform: JSON the rules cannot read is refused, not passed unedited", async () => {
  // An upstream that compresses whatever it is asked, and parses text/json and gzip bodies.
  const plain = new TextEncoder().encode(JSON.stringify(ORDER));
  const gzipped = new Uint8Array(
    await new Response(
      new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const bodies: string[] = [];
  const up = startUpstream(async (req: Request) => {
    const raw = new Uint8Array(await req.arrayBuffer());
    const decoded = req.headers.get("content-encoding") === "gzip"
      ? new Uint8Array(
        await new Response(new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip")))
          .arrayBuffer(),
      )
      : raw;
    bodies.push(new TextDecoder().decode(decoded));
    return new Response(gzipped, {
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
    });
  });
  await withRoutes(
    up,
    `
  - name: orders
    match: { path: /orders }
    upstream: a
    transform: { response: { json: { remove: [internal_id] } } }
  - name: signup
    match: { path: /signup }
    upstream: a
    transform: { request: { json: { remove: [admin] } } }
`,
    async (g) => {
      await assertError(await fetch(`${g.url()}/orders/7`), 502, "upstream_error");

      // text/json is JSON to the upstream, and to the rules now.
      const legacy = await fetch(`${g.url()}/signup`, {
        method: "POST",
        headers: { "content-type": "text/json" },
        body: JSON.stringify({ name: "Ada", admin: true }),
      });
      await legacy.body?.cancel();
      assertEquals(JSON.parse(bodies.at(-1)!), { name: "Ada" });

      const compressed = new Uint8Array(
        await new Response(
          new Blob([JSON.stringify({ name: "Ada", admin: true })]).stream()
            .pipeThrough(new CompressionStream("gzip")),
        ).arrayBuffer(),
      );
      const seen = bodies.length;
      const res = await fetch(`${g.url()}/signup`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: compressed,
      });
      assertEquals(res.headers.get("accept-encoding"), "identity");
      await assertError(res, 415, "unsupported_media_type");
      assertEquals(bodies.length, seen, "the upstream never saw it");
    },
  );
});

Deno.test("transform: request JSON is rewritten before it goes upstream", async () => {
  const { up, bodies } = jsonUpstream("{}");
  await withRoutes(
    up,
    `
  - name: signup
    match: { path: / }
    upstream: a
    transform: { request: { json: { keep: [name, "tags[].label"], rename: { name: full_name } } } }
`,
    async (g) => {
      const sent = { name: "Ada", admin: true, tags: [{ label: "x", weight: 1 }] };
      const res = await fetch(`${g.url()}/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(sent),
      });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      assertEquals(JSON.parse(bodies[0]!), { full_name: "Ada", tags: [{ label: "x" }] });
      assertEquals(up.received[0]!.headers.get("content-length"), String(bodies[0]!.length));

      const text = await fetch(`${g.url()}/signup`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: '{"admin": true}',
      });
      await text.body?.cancel();
      assertEquals(bodies[1], '{"admin": true}');

      const bad = await fetch(`${g.url()}/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      });
      const err = await assertError(bad, 400, "bad_request");
      assertEquals(err.error.message, "The request body is not valid JSON");
      assertEquals(bodies.length, 2);
    },
  );
});

Deno.test("transform: a response over the buffer limit passes unmodified, or is refused", async () => {
  const big = JSON.stringify({ secret: "s", filler: "x".repeat(5000) });
  const { up } = jsonUpstream(big);
  const logged: string[] = [];
  const logger: Logger = {
    log: () => {},
    debug: () => {},
    info: () => {},
    warn: (m) => logged.push(m),
    error: () => {},
    every: (_k, _i, _l, m) => (logged.push(m), true),
  };
  await withRoutes(
    up,
    `
  - name: pass
    match: { path: /pass }
    upstream: a
    transform: { response: { max_body_bytes: 1024, json: { remove: [secret] } } }
  - name: reject
    match: { path: /reject }
    upstream: a
    transform: { response: { max_body_bytes: 1024, on_oversize: reject, json: { remove: [secret] } } }
  - name: fits
    match: { path: /fits }
    upstream: a
    transform: { response: { max_body_bytes: 8192, json: { remove: [secret] } } }
`,
    async (g) => {
      for (const path of ["/pass", "/pass/chunked"]) {
        const pass = await fetch(`${g.url()}${path}`);
        assertEquals(await pass.text(), big);
      }
      assertOk(logged.some((m) => m.includes("larger than the transform buffer")));
      await assertError(await fetch(`${g.url()}/reject`), 502, "upstream_error");
      await assertError(await fetch(`${g.url()}/reject/chunked`), 502, "upstream_error");
      const fits = await fetch(`${g.url()}/fits/chunked`);
      assertEquals(await fits.json(), { filler: "x".repeat(5000) });
    },
    { logger },
  );
});

Deno.test("transform: a request body over the buffer limit passes untouched or gets 413", async () => {
  const { up, bodies } = jsonUpstream("{}");
  await withRoutes(
    up,
    `
  - name: pass
    match: { path: /pass }
    upstream: a
    transform: { request: { max_body_bytes: 100, json: { remove: [secret] } } }
  - name: reject
    match: { path: /reject }
    upstream: a
    transform: { request: { max_body_bytes: 100, on_oversize: reject, json: { remove: [secret] } } }
`,
    async (g) => {
      const body = JSON.stringify({ secret: 1, pad: "p".repeat(200) });
      // A stream has no Content-Length: the gateway finds out while buffering.
      const chunked = () =>
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode(body.slice(0, 50)));
            c.enqueue(new TextEncoder().encode(body.slice(50)));
            c.close();
          },
        });
      const post = (path: string, b: BodyInit) =>
        fetch(`${g.url()}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: b,
        });
      const a = await post("/pass", body);
      await a.body?.cancel();
      const b = await post("/pass", chunked());
      await b.body?.cancel();
      assertEquals(bodies, [body, body]);
      await assertError(await post("/reject", body), 413, "payload_too_large");
      await assertError(await post("/reject", chunked()), 413, "payload_too_large");
      assertEquals(up.received.length, 2);
    },
  );
});

Deno.test("transform: a request body with two Content-Types is refused, not passed unedited", async () => {
  const { up, bodies } = jsonUpstream("{}");
  await withRoutes(
    up,
    `
  - name: r
    match: { path: / }
    upstream: a
    transform: { request: { json: { remove: [is_admin] } } }
`,
    async (g) => {
      const body = '{"is_admin":true}';
      const twoLines = await rawRequest(g.url(), [
        "POST /r HTTP/1.1",
        "Host: api.test",
        "Connection: close",
        "Content-Type: application/json",
        "Content-Type: text/plain",
        `Content-Length: ${body.length}`,
      ], body);
      assertEquals(twoLines.status, 400);
      assertEquals(JSON.parse(twoLines.body).error.code, "bad_request");
      assertEquals(
        JSON.parse(twoLines.body).error.message,
        "The request has more than one Content-Type",
      );
      const post = (type: string) =>
        fetch(`${g.url()}/r`, { method: "POST", headers: { "content-type": type }, body });
      await assertError(await post("text/plain, application/json"), 400, "bad_request");
      assertEquals(up.received.length, 0);
      // A comma inside a quoted parameter value is one media type.
      const quoted = await post('application/json; profile="a,b"');
      assertEquals(quoted.status, 200);
      await quoted.body?.cancel();
      assertEquals(bodies, ["{}"]);
    },
  );
});

/** An upstream serving `body` as JSON, honouring a `Range: bytes=a-b` with a 206. */
function rangeUpstream(body: string) {
  return startUpstream((req) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
    if (range === null) return Response.json(JSON.parse(body));
    const [from, to] = [Number(range[1]), Number(range[2])];
    return new Response(body.slice(from, to + 1), {
      status: 206,
      headers: {
        "content-type": "application/json",
        "content-range": `bytes ${from}-${to}/${body.length}`,
      },
    });
  });
}

const RULES_ROUTE = `
  - name: r
    match: { path: / }
    upstream: a
    transform: { response: { json: { remove: [secret] } } }
`;

Deno.test("transform: response rules ask the upstream for the whole body, not a range", async () => {
  const body = JSON.stringify({ secret: "s".repeat(20), id: 7 });
  const up = rangeUpstream(body);
  await withRoutes(up, RULES_ROUTE, async (g) => {
    const res = await fetch(`${g.url()}/r`, {
      headers: { range: "bytes=0-13", "if-range": '"v1"' },
    });
    assertEquals([res.status, res.headers.get("content-range")], [200, null]);
    assertEquals(await res.json(), { id: 7 });
    assertEquals(up.received[0]!.headers.get("range"), null);
    assertEquals(up.received[0]!.headers.get("if-range"), null);
  });
});

Deno.test("transform: a HEAD on a route with response rules carries no upstream length", async () => {
  const body = JSON.stringify({ secret: "s".repeat(20), id: 7 });
  const up = rangeUpstream(body);
  await withRoutes(up, RULES_ROUTE, async (g) => {
    const head = await rawRequest(g.url(), ["HEAD /r HTTP/1.1", "Host: a", "Connection: close"]);
    const get = await fetch(`${g.url()}/r`);
    assertEquals(await get.text(), '{"id":7}');
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("content-length"), null);
  });
});

Deno.test("transform: a rewritten body loses the digests of the old one, and its ETag is weak", async () => {
  const body = JSON.stringify({ secret: "s", id: 7 });
  const bodies: string[] = [];
  const up = startUpstream(async (req) => {
    bodies.push(await req.text());
    return new Response(body, {
      headers: {
        "content-type": "application/json",
        "content-digest": "sha-256=:AAAA:",
        "repr-digest": "sha-256=:BBBB:",
        etag: '"v1"',
      },
    });
  });
  const routes = `
  - name: r
    match: { path: / }
    upstream: a
    transform: { request: { json: { remove: [admin] } }, response: { json: { remove: [secret] } } }
`;
  await withRoutes(up, routes, async (g) => {
    const res = await fetch(`${g.url()}/r`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-digest": "sha-256=:CCCC:" },
      body: JSON.stringify({ admin: true, n: 1 }),
    });
    assertEquals(await res.json(), { id: 7 });
    const answered = ["content-digest", "repr-digest", "etag"].map((h) => res.headers.get(h));
    assertEquals(answered, [null, null, 'W/"v1"']);
    assertEquals(bodies, ['{"n":1}']);
    assertEquals(up.received[0]!.headers.get("content-digest"), null);
  });
});

Deno.test("transform: numbers no rule names keep their exact text both ways", async () => {
  // Past 2^53, trailing zeros, exponents, -0, tiny and huge magnitudes: a plain parse/serialise
  // round trip writes every one of them differently (12345678901234567890 -> ...67000).
  const numbers = '"id":12345678901234567890,"price":1.10,"ratio":1e3,"zero":-0,"tiny":0.0000001,' +
    '"lots":[9007199254740993,2.50,1E+400],"plain":3.5';
  const { up, bodies } = jsonUpstream(`{${numbers},"internal_id":"x"}`);
  await withRoutes(
    up,
    `
  - name: r
    match: { path: / }
    upstream: a
    transform:
      request: { json: { keep: [id, price, "deep.x", "list[].n"] } }
      response: { json: { remove: [internal_id] } }
`,
    async (g) => {
      const res = await fetch(`${g.url()}/r`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        // keep walks into "deep" and "list" items, which are numbers here: they stay as they are.
        body: '{"id":12345678901234567891,"price":0.10,"deep":1.0,"list":[2.0],"drop":1}',
      });
      assertEquals(await res.text(), `{${numbers}}`);
      assertEquals(bodies, ['{"id":12345678901234567891,"price":0.10,"deep":1.0,"list":[2.0]}']);
    },
  );
});
