/**
 * `observe.tracing.enabled: false` through a real listener: the gateway takes
 * no part in the trace, and the caller's `traceparent`/`tracestate` reach the
 * upstream as any other end-to-end field, through the proxy, route header
 * transforms, aggregation calls and async jobs. The upstream is a raw one that
 * answers with the request head it received, so values are compared as bytes.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { baseConfig, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { rawRequest } from "../helpers/raw.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startFlaky } from "../resilience/flaky.ts";
import { STREAM_KEY, withJobs } from "../jobs/helpers.ts";
import { parseEntry } from "../../lib/jobs/worker_protocol.ts";

const TRACE = "0af7651916cd43dd8448eb211c80319c";
const members = (n: number, value = "v") =>
  Array.from({ length: n }, (_, i) => `k${i}=${value}`).join(",");

/** Header lines a case sends, each one of which tracing would have rewritten or dropped. */
const CASES: { name: string; lines: string[]; logged: string | null }[] = [
  {
    // Flags ff would go up as 03; 33 members would drop the tracestate.
    name: "valid, undefined flags, a tracestate over 32 members",
    lines: [`Traceparent: 00-${TRACE}-b7ad6b7169203331-ff`, `Tracestate: ${members(33)}`],
    logged: TRACE,
  },
  {
    // Would be cut to 512 characters.
    name: "valid, a tracestate over 512 characters",
    lines: [
      `traceparent: 00-${TRACE}-b7ad6b7169203331-01`,
      `tracestate: ${members(3, "x".repeat(300))}`,
    ],
    logged: TRACE,
  },
  {
    // Upper-case hex is invalid: a new trace would start, the tracestate dropped.
    name: "invalid (upper case), with a tracestate",
    lines: [`traceparent: 00-${TRACE.toUpperCase()}-B7AD6B7169203331-01`, "tracestate: vendor=abc"],
    logged: null,
  },
  {
    name: "garbage, and a tracestate repeated on two lines",
    lines: ["traceparent: not a  traceparent", "tracestate: a=1", "tracestate: b=2"],
    logged: null,
  },
  { name: "a tracestate without a traceparent", lines: ["tracestate: lonely=1"], logged: null },
  { name: "neither", lines: [], logged: null },
];

/** The trace fields of a request head, as lines. */
function traceLines(head: string): string[] {
  return head.split("\r\n").filter((l) => /^trace(parent|state):/i.test(l));
}

/** As the gateway writes every forwarded field: the name lower-cased, the value as it came. */
function forwarded(lines: string[]): string[] {
  return lines.map((l) => l.replace(/^[^:]+/, (name) => name.toLowerCase()));
}

async function withGateway(
  yaml: (upstreamUrl: string) => string,
  fn: (g: TestGateway, heads: () => string[]) => Promise<void>,
): Promise<void> {
  const up = startFlaky((req) => ({ status: 200, body: JSON.stringify({ head: req.head }) }));
  try {
    const g = await startGateway(baseConfig(yaml(up.url)));
    try {
      await fn(g, () => up.received.map((r) => r.head));
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
}

function get(g: TestGateway, path: string, lines: string[]) {
  return rawRequest(g.url(), [
    `GET ${path} HTTP/1.1`,
    "Host: gw.test",
    "Connection: close",
    ...lines,
  ]);
}

Deno.test("tracing disabled: traceparent and tracestate reach the upstream as sent, valid or not; the log has the caller's trace id or null", async () => {
  await withGateway(
    (url) => `
observe:
  tracing: { enabled: false }
  access_log: { path: access.log }
upstreams:
  a: { targets: [ { url: "${url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a }
`,
    async (g, heads) => {
      for (const c of CASES) {
        const res = await get(g, "/p", c.lines);
        assertEquals(res.status, 200, c.name);
        assertEquals(traceLines(heads().at(-1)!), forwarded(c.lines), c.name);
      }
      await g.gw.deps.accessLogs.flushAll();
      const log = (await Deno.readTextFile(`${g.dir}/access.log`)).trimEnd().split("\n")
        .map((l) => JSON.parse(l));
      assertEquals(log.map((r) => r.trace_id), CASES.map((c) => c.logged));
    },
  );
});

/**
 * Routes whose transforms, or whose upstream's static headers, touch the trace
 * fields. The static ones only with tracing off: on, they are a config error
 * (tests/config/upstream_headers_test.ts).
 */
const transformRoutes = (url: string, set: string, tracing: boolean) => `
observe: { tracing: { enabled: ${tracing} } }
upstreams:
  a: { targets: [ { url: "${url}" } ] }
  b: { targets: [ { url: "${url}" } ]${tracing ? "" : `, headers: { Tracestate: "upstream=1" }`} }
routes:
  - name: replaced
    match: { path: /replaced }
    upstream: a
    transform: { request: { headers: { set: { Traceparent: "${set}" }, remove: [Tracestate] } } }
  - name: added
    match: { path: /added }
    upstream: a
    transform: { request: { headers: { add: { Tracestate: "gw=1" }, remove: [Traceparent] } } }
  - name: renamed
    match: { path: /renamed }
    upstream: a
    transform: { request: { headers: { rename: { Traceparent: X-Caller-Traceparent } } } }
  - { name: static, match: { path: /static }, upstream: b }
`;

Deno.test("tracing disabled: route header transforms and an upstream's headers apply to traceparent and tracestate as to any field", async () => {
  const set = `00-${"1".repeat(32)}-${"2".repeat(16)}-01`;
  await withGateway((url) => transformRoutes(url, set, false), async (g, heads) => {
    const sent = [`traceparent: 00-${TRACE}-b7ad6b7169203331-01`, "tracestate: vendor=abc"];
    await get(g, "/replaced", sent);
    assertEquals(traceLines(heads().at(-1)!), [`traceparent: ${set}`]);
    await get(g, "/added", sent);
    assertEquals(traceLines(heads().at(-1)!), ["tracestate: vendor=abc", "tracestate: gw=1"]);
    await get(g, "/renamed", sent);
    const head = heads().at(-1)!;
    assertEquals(traceLines(head), ["tracestate: vendor=abc"]);
    assertEquals(
      head.split("\r\n").filter((l) => l.startsWith("x-caller-traceparent:")),
      [`x-caller-traceparent: 00-${TRACE}-b7ad6b7169203331-01`],
    );
    await get(g, "/static", sent);
    assertEquals(traceLines(heads().at(-1)!), [sent[0]!, "tracestate: upstream=1"]);
  });
});

Deno.test("tracing enabled: the trace fields are the gateway's, whatever a route's transforms say", async () => {
  const set = `00-${"1".repeat(32)}-${"2".repeat(16)}-01`;
  await withGateway((url) => transformRoutes(url, set, true), async (g, heads) => {
    const sent = [`traceparent: 00-${TRACE}-b7ad6b7169203331-01`, "tracestate: vendor=abc"];
    const hop = new RegExp(`^traceparent: 00-${TRACE}-(?!b7ad6b7169203331)[0-9a-f]{16}-01$`);
    for (const path of ["/replaced", "/added"]) {
      await get(g, path, sent);
      const [traceparent, ...rest] = traceLines(heads().at(-1)!);
      assertMatch(traceparent!, hop);
      assertEquals(rest, ["tracestate: vendor=abc"], path);
    }
  });
});

Deno.test("tracing disabled: every aggregation call gets the caller's trace fields as sent", async () => {
  await withGateway(
    (url) => `
observe: { tracing: { enabled: false } }
upstreams:
  a: { targets: [ { url: "${url}" } ] }
routes:
  - name: both
    match: { path: /both }
    aggregate:
      calls:
        - { key: one, upstream: a, path: /one }
        - { key: two, upstream: a, path: /two }
`,
    async (g, heads) => {
      for (const c of CASES.slice(0, 4)) {
        const before = heads().length;
        const res = await get(g, "/both", c.lines);
        assertEquals(res.status, 200, c.name);
        const calls = heads().slice(before);
        assertEquals(calls.length, 2, c.name);
        for (const head of calls) assertEquals(traceLines(head), forwarded(c.lines), c.name);
      }
    },
  );
});

Deno.test("tracing disabled: an async job holds the caller's trace fields as sent", async () => {
  await withJobs(startUpstream(), async ({ g, db }) => {
    const sent: [string, string][] = [
      ["traceparent", "00-not-a-valid-one-01"],
      ["tracestate", members(40)],
    ];
    const res = await fetch(`${g.url()}/orders`, { method: "POST", body: "{}", headers: sent });
    assertEquals(res.status, 202);
    const raw = await db.xrangeBuffer(STREAM_KEY, "-", "+");
    const [entry] = raw.map(([id, fields]) => parseEntry(id.toString(), fields)!);
    assertEquals(entry!.headers.filter(([name]) => name.startsWith("trace")), sent);
  }, { top: "observe: { tracing: { enabled: false } }\n" });
});
