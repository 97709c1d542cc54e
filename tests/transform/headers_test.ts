/** Header transforms and the security headers preset, through a real listener and upstream. */
import { assertEquals } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { selfSignedCert } from "../helpers/tls.ts";
import { rawRequest } from "../helpers/raw.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { sign } from "../auth/idp.ts";

Deno.test("transform: request headers are set, added, removed and renamed with templates", async () => {
  const up = startUpstream();
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: users
    match: { path: "/users/{id}" }
    upstream: a
    transform:
      request:
        headers:
          remove: [Cookie, X-Debug]
          rename: { X-Old-Name: X-New-Name }
          set:
            X-Gateway: edge
            X-Route: "\${route.name}"
            X-Request: "\${request_id}"
            X-Tenant-Path: "\${header.X-Tenant}/\${param.id}?p=\${query.page}"
            X-Consumer-Id: "\${consumer.id}"
          add: { X-Tags: "via-gateway" }
`));
  try {
    const res = await fetch(`${g.url()}/users/42?page=2`, {
      headers: {
        "Cookie": "session=secret",
        "X-Debug": "1",
        "X-Old-Name": "moved",
        "X-Tenant": "acme",
        "X-Tags": "client",
        "X-Request-Id": "abc-123",
        // An anonymous caller must not be able to supply what the gateway sets.
        "X-Consumer-Id": "spoofed",
      },
    });
    assertEquals(res.status, 200);
    const seen = (await res.json()).headers;
    assertEquals(seen["cookie"], undefined);
    assertEquals(seen["x-debug"], undefined);
    assertEquals(seen["x-old-name"], undefined);
    assertEquals(seen["x-new-name"], "moved");
    assertEquals(seen["x-gateway"], "edge");
    assertEquals(seen["x-route"], "users");
    assertEquals(seen["x-request"], "abc-123");
    assertEquals(seen["x-tenant-path"], "acme/42?p=2");
    assertEquals(seen["x-consumer-id"], undefined);
    assertEquals(seen["x-tags"], "client, via-gateway");
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("transform: response headers are edited and the security preset applied", async () => {
  const up = startUpstream(() =>
    new Response("{}", {
      headers: {
        "content-type": "application/json",
        "server": "Apache/2.4.1",
        "x-powered-by": "PHP/5.4",
        "x-internal-trace": "t-1",
        "x-legacy": "v",
        "x-frame-options": "SAMEORIGIN",
      },
    })
  );
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: api
    match: { path: / }
    upstream: a
    transform:
      security_headers: true
      response:
        headers:
          remove: [X-Internal-Trace]
          rename: { X-Legacy: X-Modern }
          set: { X-Served-By: "\${route.name}", Referrer-Policy: same-origin }
          add: { X-Request-Echo: "\${request_id}" }
`));
  try {
    const res = await fetch(`${g.url()}/x`, { headers: { "X-Request-Id": "r-9" } });
    await res.body?.cancel();
    const h = res.headers;
    assertEquals(h.get("server"), null);
    assertEquals(h.get("x-powered-by"), null);
    assertEquals(h.get("x-internal-trace"), null);
    assertEquals(h.get("x-legacy"), null);
    assertEquals(h.get("x-modern"), "v");
    assertEquals(h.get("x-served-by"), "api");
    assertEquals(h.get("x-request-echo"), "r-9");
    assertEquals(h.get("x-content-type-options"), "nosniff");
    // The upstream's own choice stands; explicit rules override the preset.
    assertEquals(h.get("x-frame-options"), "SAMEORIGIN");
    assertEquals(h.get("referrer-policy"), "same-origin");
    // Plain HTTP: no HSTS.
    assertEquals(h.get("strict-transport-security"), null);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("transform: the security preset adds HSTS on a TLS listener only", async () => {
  const dir = await Deno.makeTempDir();
  const up = startUpstream(() => new Response("ok"));
  try {
    await selfSignedCert(dir);
    const g = await startGateway(`
listeners:
  - { name: plain, host: 127.0.0.1, port: 0 }
  - { name: secure, host: 127.0.0.1, port: 0, tls: { cert: ${dir}/cert.pem, key: ${dir}/key.pem } }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: api, match: { path: / }, upstream: a, transform: { security_headers: true } }
`);
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/cert.pem`)] });
    try {
      const tls = await fetch(`${g.url("secure")}/`, { client });
      await tls.body?.cancel();
      assertEquals(
        tls.headers.get("strict-transport-security"),
        "max-age=31536000; includeSubDomains",
      );
      const plain = await fetch(`${g.url("plain")}/`);
      await plain.body?.cancel();
      assertEquals(plain.headers.get("strict-transport-security"), null);
      assertEquals(plain.headers.get("x-content-type-options"), "nosniff");
    } finally {
      client.close();
      await g.close();
    }
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A header value as the bytes that went over the wire (runtimes read them one char per byte). */
const bytesOf = (value: string | null) =>
  value === null ? null : [...value].map((c) => c.charCodeAt(0).toString(16)).join(" ");
const utf8Of = (text: string) =>
  [...new TextEncoder().encode(text)].map((b) => b.toString(16)).join(" ");

Deno.test("transform: non-ASCII values go upstream as UTF-8, header bytes as they came", async () => {
  const up = startUpstream((req) => Response.json(Object.fromEntries(req.headers)));
  const secret = "a-shared-secret-of-at-least-32-bytes!!";
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
auth:
  jwt:
    kind: jwt
    secret: "${secret}"
    algorithms: [HS256]
    claims_to_headers: { email: X-User-Email }
routes:
  - name: users
    match: { path: "/users/{name}" }
    upstream: a
    auth: [jwt]
    transform:
      request:
        headers:
          set:
            X-Param: "\${param.name}"
            X-Query: "\${query.q}"
            X-Claim: "\${claim.sub}"
            X-Echo: "\${header.X-In}"
            X-Literal: "Café"
      response:
        headers: { set: { X-Back: "\${param.name}" } }
`));
  try {
    const token = await sign({ alg: "HS256", privateKey: new TextEncoder().encode(secret) }, {
      sub: "José",
      email: "José ☃",
      exp: Math.floor(Date.now() / 1000) + 60,
    });
    // Raw: the client's own header bytes (UTF-8 é) must pass unchanged, not be encoded again.
    const res = await rawRequest(g.url(), [
      "GET /users/%C3%A9?q=%C3%A0 HTTP/1.1",
      "Host: api.test",
      "Connection: close",
      `Authorization: Bearer ${token}`,
      "X-In: é",
    ]);
    assertEquals(res.status, 200, res.body);
    const seen = JSON.parse(res.body);
    assertEquals(bytesOf(seen["x-consumer-id"]), utf8Of("jwt:José"));
    assertEquals(bytesOf(seen["x-user-id"]), utf8Of("José"));
    assertEquals(bytesOf(seen["x-user-email"]), utf8Of("José ☃"));
    assertEquals(bytesOf(seen["x-param"]), utf8Of("é"));
    // à is c3 a0: its last byte is no whitespace to trim.
    assertEquals(bytesOf(seen["x-query"]), utf8Of("à"));
    assertEquals(bytesOf(seen["x-claim"]), utf8Of("José"));
    assertEquals(bytesOf(seen["x-echo"]), utf8Of("é"));
    assertEquals(bytesOf(seen["x-literal"]), utf8Of("Café"));
    // The raw response is read as UTF-8: é here means the bytes c3 a9 (e9 alone reads as U+FFFD).
    assertEquals(res.raw.includes("x-back: é\r\n"), true, res.raw);
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("transform: a set whose value is empty once made safe removes the header", async () => {
  const up = startUpstream((req) =>
    Response.json(Object.fromEntries(req.headers), { headers: { "x-r": "upstream" } })
  );
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: / }
    upstream: a
    transform:
      request: { headers: { set: { X-Q: "\${query.q}" }, add: { X-A: "\${query.q}" } } }
      response: { headers: { set: { X-R: "\${query.q}" } } }
`));
  try {
    for (const q of ["%20", "%0d%0a", "%09%00"]) {
      const res = await fetch(`${g.url()}/r?q=${q}`, { headers: { "x-q": "client" } });
      const seen = await res.json();
      assertEquals(
        [seen["x-q"], seen["x-a"], res.headers.get("x-r")],
        [undefined, undefined, null],
        q,
      );
    }
  } finally {
    await g.close();
    await up.close();
  }
});

Deno.test("transform: a renamed response field keeps its lines apart (Set-Cookie)", async () => {
  // Raw: Deno.serve would join the x-app-cookie lines itself.
  const up = startRawUpstream((x) =>
    x.write(
      "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n" +
        "x-app-cookie: a=1; Path=/\r\n" +
        "x-app-cookie: b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT\r\n" +
        "set-cookie: c=3; Path=/\r\n" +
        "set-cookie: d=4; Expires=Thu, 22 Oct 2026 07:28:00 GMT\r\n\r\nok",
    )
  );
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: in
    match: { path: /in }
    upstream: a
    transform: { response: { headers: { remove: [Set-Cookie], rename: { X-App-Cookie: Set-Cookie } } } }
  - name: out
    match: { path: /out }
    upstream: a
    transform: { response: { headers: { rename: { Set-Cookie: X-Upstream-Cookie } } } }
`));
  try {
    const res = await fetch(`${g.url()}/in`);
    await res.body?.cancel();
    // Joined into one field, the second cookie would be lost in the first one's attributes.
    assertEquals(res.headers.getSetCookie(), [
      "a=1; Path=/",
      "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
    ]);
    const out = await rawRequest(g.url(), ["GET /out HTTP/1.1", "Host: a", "Connection: close"]);
    const lines = out.raw.split("\r\n").filter((l) => /^x-upstream-cookie:/i.test(l));
    assertEquals(lines, [
      "x-upstream-cookie: c=3; Path=/",
      "x-upstream-cookie: d=4; Expires=Thu, 22 Oct 2026 07:28:00 GMT",
    ]);
  } finally {
    await g.close();
    up.close();
  }
});

Deno.test("transform: a request `set` or `add` of the request id field does not send it twice", async () => {
  // The gateway writes the request id on every request, as it does X-Forwarded-* and Via, whose
  // `set` was left out; the request id's went out beside it, so the upstream saw two (or three).
  const heads: string[] = [];
  const up = startRawUpstream(async (x) => {
    heads.push(x.head);
    await x.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  });
  const g = await startGateway(baseConfig(`
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: api
    match: { path: / }
    upstream: a
    transform:
      request:
        headers:
          set: { X-Request-Id: fixed, X-Forwarded-Proto: https }
          add: { x-request-id: more }
`));
  try {
    const res = await fetch(`${g.url()}/x`);
    assertEquals(await res.text(), "ok");
    const lines = heads[0]!.split("\r\n");
    const id = res.headers.get("x-request-id");
    assertEquals(lines.filter((l) => l.startsWith("x-request-id:")), [`x-request-id: ${id}`]);
    assertEquals(lines.filter((l) => l.startsWith("x-forwarded-proto:")), [
      "x-forwarded-proto: http",
    ]);
  } finally {
    await g.close();
    up.close();
  }
});
