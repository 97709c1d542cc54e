/**
 * Request filtering through a running gateway: configured rules and the
 * built-in set (off by default, on per route), block and log actions, body
 * inspection that leaves the forwarded body intact, and rule validation at load.
 */
import { assertEquals, assertError, assertMatch, assertOk } from "../helpers/assert.ts";
import { rawRequest } from "../helpers/raw.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";
import { withRig } from "./_setup.ts";

const config = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
security:
  waf:
    rules:
      - { id: no-scanners, headers: { User-Agent: { regex: "sqlmap|nikto", case_insensitive: true } } }
routes:
  - name: guarded
    match: { path: /guarded }
    upstream: app
    waf:
      builtin: true
      rules:
        - { id: no-debug, query: { contains: "debug=1" } }
        - { id: admin-posts, methods: [POST], path: "^/guarded/admin", body: { contains: '"role":"admin"' } }
        - { id: watch-export, action: log, path: { prefix: /guarded/export } }
  - name: shadow
    match: { path: /shadow }
    upstream: app
    waf: { builtin: [sqli], builtin_action: log }
  - { name: open, match: { path: /open }, upstream: app }
`;

Deno.test("configured rules and the per-route built-in set block; other routes are not filtered", async () => {
  const lines: string[] = [];
  const logger = new JsonLogger("warn", (l) => lines.push(l));
  await withRig(config, async ({ g, up }) => {
    const base = g.url();
    const blocked: [string, RequestInit][] = [
      [`/guarded/a?debug=1`, {}],
      [`/guarded/a?id=1%20UNION%20SELECT%20password%20FROM%20users`, {}],
      [`/guarded/a?q=%3Cscript%3Ealert(1)%3C/script%3E`, {}],
      [`/guarded/a?file=../../etc/passwd`, {}],
      [`/guarded/a`, { headers: { cookie: "id=1' OR '1'='1" } }],
      [`/guarded/admin/users`, { method: "POST", body: '{"name":"x","role":"admin"}' }],
      [`/guarded/form`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "comment=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E",
      }],
      [`/open/a`, { headers: { "user-agent": "sqlmap/1.7" } }], // the global rule covers every route
    ];
    for (const [path, init] of blocked) {
      await assertError(await fetch(base + path, init), 403, "request_blocked");
    }
    const allowed: [string, RequestInit][] = [
      [`/guarded/a?q=rock+and+roll&name=O'Brien`, {}],
      [`/guarded/admin/users`, { method: "POST", body: '{"name":"x","role":"viewer"}' }],
      [`/guarded/export/all`, {}], // log-only rule
      [`/open/a?id=1%20UNION%20SELECT%20x`, {}], // built-ins are off unless a route turns them on
      [`/shadow/a?id=1%20UNION%20SELECT%20x`, {}], // built-ins in log mode
    ];
    for (const [path, init] of allowed) {
      const res = await fetch(base + path, init);
      assertEquals(res.status, 200, path);
      await res.body?.cancel();
    }
    assertEquals(up.received.map((r) => r.url), allowed.map(([p]) => p.replace("'", "%27")));
    const logged = lines.map((l) => JSON.parse(l)).filter((l) =>
      l.msg === "request matched a filtering rule"
    );
    const byRule = (id: string) => logged.filter((l) => l.rule === id);
    assertEquals(byRule("watch-export")[0]?.action, "log");
    assertEquals(byRule("builtin:sqli-union-select").map((l) => l.scope), ["guarded", "shadow"]);
    assertEquals(byRule("no-scanners")[0]?.scope, "global");
    assertEquals(byRule("builtin:xss-event-handler").length, 1);
  }, { logger });
});

Deno.test("body inspection forwards the whole body unchanged, small or large, sized or chunked", async () => {
  const seen: number[] = [];
  const digests: string[] = [];
  const handler = async (req: Request) => {
    const bytes = new Uint8Array(await req.arrayBuffer());
    seen.push(bytes.length);
    digests.push(await sha(bytes));
    return new Response("ok");
  };
  await withRig(config, async ({ g }) => {
    const big = new Uint8Array(300_000).map((_, i) => 97 + (i % 26));
    const small = new TextEncoder().encode('{"name":"plain"}');
    for (const body of [small, big]) {
      const res = await fetch(`${g.url()}/guarded/upload`, { method: "POST", body });
      assertEquals(res.status, 200);
      await res.body?.cancel();
    }
    const chunked = await rawRequest(g.url(), [
      "POST /guarded/upload HTTP/1.1",
      "Host: localhost",
      "Connection: close",
      "Transfer-Encoding: chunked",
    ], "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assertEquals(chunked.status, 200);
    assertEquals(seen, [small.length, big.length, 11]);
    assertEquals(digests.slice(0, 2), [await sha(small), await sha(big)]);
    // An attack past the inspected prefix (body_bytes, 8192 by default) is not seen: documented.
    const late = new TextEncoder().encode("x".repeat(9000) + "<script>alert(1)</script>");
    const res = await fetch(`${g.url()}/guarded/upload`, { method: "POST", body: late });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  }, { handler });
});

async function sha(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("a rule regex that needs backtracking is a positioned config error", async () => {
  const yaml = baseConfig(`
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: r
    match: { path: / }
    upstream: app
    waf:
      rules:
        - id: backref
          path: "(a+)\\\\1"
`);
  try {
    await startGateway(yaml);
  } catch (e) {
    const msg = (e as Error).message;
    assertMatch(msg, /gateway\.yaml:15:17: routes\[0\]\.waf\.rules\[0\]\.path/);
    assertMatch(msg, /RE2 syntax \(matched in linear time\): .*invalid escape sequence/);
    return;
  }
  assertOk(false, "the config was accepted");
});

Deno.test("built-in rules read a JSON body's strings, not its escapes: an ellipsis before \\n or \\\" passes, escaped attacks do not", async () => {
  await withRig(config, async ({ g, up }) => {
    const json = { "content-type": "application/json" };
    const allowed = [
      JSON.stringify({ text: "Loading...\nPlease wait" }),
      JSON.stringify({ msg: 'He said "wait..."', tabs: "a...\tb" }),
      JSON.stringify({ path: "docs/intro", note: "see C:\\Users\\me\\notes" }),
    ];
    for (const body of allowed) {
      const res = await fetch(`${g.url()}/guarded/messages`, {
        method: "POST",
        headers: json,
        body,
      });
      assertEquals(res.status, 200, body);
      await res.body?.cancel();
    }
    const blocked = [
      JSON.stringify({ file: "..\\..\\windows\\win.ini" }),
      '{"comment":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}',
      '{"next":"..\\/..\\/etc\\/passwd"}',
    ];
    for (const body of blocked) {
      const res = await fetch(`${g.url()}/guarded/messages`, {
        method: "POST",
        headers: json,
        body,
      });
      await assertError(res, 403, "request_blocked");
    }
    assertEquals(up.received.length, allowed.length);
  });
});

Deno.test("a header rule matches each line of a repeated field, not only the joined value", async () => {
  const rules = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - name: guarded
    match: { path: / }
    upstream: app
    waf:
      rules:
        - { id: no-debug, headers: { X-Debug: { equals: "1" } } }
        - { id: no-internal, headers: { X-Role: "^internal$" } }
`;
  await withRig(rules, async ({ g, up }) => {
    const get = (...extra: string[]) =>
      rawRequest(g.url(), ["GET /a HTTP/1.1", "Host: localhost", "Connection: close", ...extra]);
    // An upstream reading the first line (Go's Header.Get) or the last sees "1" / "internal".
    for (
      const head of [
        ["X-Debug: 1"],
        ["X-Debug: 1", "X-Debug: 1"],
        ["X-Debug: 0", "X-Debug: 1"],
        ["X-Role: internal", "X-Role: public"],
        ["X-Role: public", "x-role: internal"],
      ]
    ) {
      const res = await get(...head);
      assertEquals(res.status, 403, `${head.join(" | ")}: ${res.raw}`);
    }
    for (const head of [["X-Debug: 0"], ["X-Debug: 0", "X-Debug: 2"], ["X-Role: public"]]) {
      const res = await get(...head);
      assertEquals(res.status, 200, `${head.join(" | ")}: ${res.raw}`);
    }
    assertEquals(up.received.length, 3);
  });
});
