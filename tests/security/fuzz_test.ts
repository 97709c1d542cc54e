/**
 * Bounded fuzzing (seeded, so a failure replays): 100,000 generated request
 * paths through the normaliser and the router, and 100,000 generated
 * forwarded-for header sets through client address resolution and the
 * built-in filters. No exception; what is accepted is canonical; routing and
 * the forwarded path agree; a sample goes through a running gateway too.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { normalisePath } from "../../lib/security/path.ts";
import { RouteTable } from "../../lib/router/table.ts";
import { compileRewrite } from "../../lib/router/rewrite.ts";
import type { MatchConfig } from "../../lib/router/schema.ts";
import { CidrSet, formatIp, parseIp } from "../../lib/security/cidr.ts";
import { clientIpOf } from "../../lib/security/client_ip.ts";
import { BUILTIN_RULES } from "../../lib/security/waf/builtin.ts";
import { compileLinearRegex, loadLinearRegex } from "../../lib/core/linear_regex.ts";
import { decodeForInspection } from "../../lib/security/waf/decode.ts";
import { withRig } from "./_setup.ts";
import { HeaderFields } from "../../lib/core/header_fields.ts";
import { QueryParams } from "../../lib/core/query_params.ts";
import { seededRandom as rng } from "../helpers/seeded_random.ts";

const RUNS = 100_000;

const PATH_PIECES = [
  "/",
  "/",
  "/",
  "//",
  ".",
  "..",
  "./",
  "../",
  "%2e",
  "%2E",
  "%2e%2e",
  ".%2e",
  "%2f",
  "%2F",
  "%5c",
  "\\",
  ";",
  "..;",
  ";x=1",
  "%00",
  "%0d%0a",
  "%",
  "%4",
  "%zz",
  "%25",
  "%252e",
  "a",
  "b",
  "admin",
  "public",
  "svc",
  "api",
  "v1",
  "%7e",
  "~",
  "%41",
  "%61dmin",
  "\uff0e",
  "\uff0f",
  "\u00e9",
  "\u{1f600}",
  "%c0%ae",
  "%ef%bc%8e",
  "#",
  " ",
  "%20",
  "A",
  "ADMIN",
  "-",
  "_",
  "@",
  ":",
  "+",
  "!",
  "%3b",
  "%3B",
  "$",
  "'",
  "(",
  "%ff",
];

function generatePath(r: () => number): string {
  let p = "/";
  const n = 1 + Math.floor(r() * 12);
  for (let i = 0; i < n; i++) p += PATH_PIECES[Math.floor(r() * PATH_PIECES.length)];
  return p;
}

interface Route {
  name: string;
  match: MatchConfig;
  rewrite: ReturnType<typeof compileRewrite>;
}

const ROUTES: Route[] = [
  { name: "public", match: { path: "/public" }, rewrite: null },
  { name: "admin", match: { path: "/admin" }, rewrite: null },
  { name: "login", match: { path_exact: "/admin/login" }, rewrite: null },
  { name: "users", match: { path: "/api/v1/users/{id}" }, rewrite: null },
  { name: "svc", match: { path: "/svc" }, rewrite: compileRewrite(true, undefined) },
  { name: "moved", match: { path: "/a" }, rewrite: compileRewrite(false, { prefix: "/b" }) },
  { name: "rest", match: { path: "/" }, rewrite: null },
] as Route[];

const table = new RouteTable(ROUTES.map((r) => ({ payload: r, match: r.match })), null);
const route = (path: string) => {
  const req = {
    method: "GET",
    path,
    host: "localhost",
    headers: new HeaderFields([]),
    queryParams: new QueryParams(""),
  };
  return table.match(req);
};

const ESCAPE = /%([0-9A-F]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** What an upstream that decodes the path once sees, as raw segments. */
function decodedOnce(path: string): string {
  return path.replace(ESCAPE, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

Deno.test(`fuzz: ${RUNS} generated paths through the normaliser and the router`, () => {
  const r = rng(0x5eed);
  let accepted = 0;
  for (let i = 0; i < RUNS; i++) {
    const raw = generatePath(r);
    const merge = i % 4 !== 0;
    const n = normalisePath(raw, merge);
    if (!n.ok) continue;
    accepted++;
    const p = n.path;
    const where = `${JSON.stringify(raw)} -> ${p}`;
    // Canonical: one leading slash, ASCII only, escapes upper-case and never of unreserved bytes.
    assertOk(p.startsWith("/"), where);
    assertOk(/^[\x21-\x7e]*$/.test(p), where);
    assertOk(!/[\\#]/.test(p), where);
    if (merge) assertOk(!p.includes("//"), where);
    for (const seg of p.split("/")) assertOk(seg !== "." && seg !== "..", where);
    for (const m of p.matchAll(/%(..)/g)) {
      assertOk(/^[0-9A-F]{2}$/.test(m[1]!), where);
      assertOk(!UNRESERVED.test(String.fromCharCode(parseInt(m[1]!, 16))), where);
    }
    // Stable: normalising again changes nothing, so any later layer routes the same way.
    assertEquals(normalisePath(p, merge), n, where);
    // An upstream decoding once gets no new separators, dot segments or control bytes.
    const seen = decodedOnce(p);
    assertEquals(seen.split("/").length, p.split("/").length, where);
    // deno-lint-ignore no-control-regex
    assertOk(!/[\\\x00-\x1f\x7f]/.test(seen), where);
    for (const seg of seen.split("/")) assertOk(seg !== "." && seg !== "..", where);

    const m = route(p);
    if (m.kind !== "found") continue;
    const forwarded = m.route.rewrite ? m.route.rewrite(p, m.matchedLength) : p;
    if (m.route.rewrite === null) {
      // What is forwarded is what was routed: the same route matches it again.
      assertEquals(forwarded, p, where);
      const again = route(normalisePath(forwarded, merge).ok ? forwarded : "/");
      assertEquals(again.kind === "found" ? again.route.name : null, m.route.name, where);
    } else {
      // A rewrite keeps the path canonical: it cannot introduce dot segments or climb.
      const re = normalisePath(forwarded, merge);
      assertOk(re.ok, `${where} => ${forwarded}`);
      for (const seg of forwarded.split("/")) assertOk(seg !== "." && seg !== "..", where);
    }
  }
  assertOk(accepted > RUNS / 10, `only ${accepted} paths accepted: the generator is too hostile`);
  assertOk(accepted < RUNS, "nothing refused: the generator is too tame");
});

const TRUSTED = new CidrSet(["10.0.0.0/8", "fd00::/8", "127.0.0.1"]);
const ADDRESS_PIECES = [
  "1.2.3.4",
  "10.0.0.7",
  "10.255.0.1",
  "127.0.0.1",
  "203.0.113.9",
  "::1",
  "fd00::5",
  "2001:db8::1",
  "::ffff:10.1.1.1",
  "::ffff:8.8.8.8",
  "[2001:db8::2]:443",
  "8.8.8.8:53",
  "unknown",
  "_hidden",
  "",
  " ",
  "garbage",
  "1.2.3",
  "256.1.1.1",
  "01.2.3.4",
  "[::1",
  "fe80::1%eth0",
  '"1.2.3.4"',
  "1.2.3.4;x",
];

function generateChain(r: () => number, forwarded: boolean): string {
  const n = Math.floor(r() * 6);
  const hops: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = ADDRESS_PIECES[Math.floor(r() * ADDRESS_PIECES.length)]!;
    if (!forwarded) hops.push(a);
    else {
      const quoted = a.includes(":") || r() < 0.3 ? `"${a.replaceAll('"', "")}"` : a;
      hops.push(
        r() < 0.2 ? `proto=https;for=${quoted}` : `for=${quoted}${r() < 0.2 ? ";by=x" : ""}`,
      );
    }
  }
  return hops.join(r() < 0.5 ? ", " : ",");
}

Deno.test(`fuzz: ${RUNS} generated forwarded-for header sets through client address resolution`, async () => {
  const r = rng(0xc0ffee);
  const peers = ["127.0.0.1", "10.0.0.1", "fd00::1", "203.0.113.7", "2001:db8::9"];
  await loadLinearRegex();
  const builtin = compileLinearRegex(BUILTIN_RULES.map((b) => `(?:${b.pattern})`).join("|"), true);
  for (let i = 0; i < RUNS; i++) {
    const peer = peers[Math.floor(r() * peers.length)]!;
    const forwarded = r() < 0.5;
    const chain = generateChain(r, forwarded);
    const where = `${peer} ${forwarded ? "Forwarded" : "XFF"}: ${chain}`;
    const got = clientIpOf(peer, chain, TRUSTED, forwarded ? "forwarded" : "x-forwarded-for");
    if (!TRUSTED.containsText(peer)) {
      assertEquals(got, { ip: peer, peerTrusted: false }, where);
      continue;
    }
    assertEquals(got.peerTrusted, true, where);
    if (got.ip === peer) continue;
    // The client is an address from the chain, in canonical form.
    const ip = parseIp(got.ip);
    assertOk(ip !== null && formatIp(ip) === got.ip, where);
    // Filters see the same header without failing (values are arbitrary client input).
    builtin.test(decodeForInspection(chain, false));
  }
});

Deno.test("fuzz sample through a running gateway: the upstream receives exactly the normalised path", async () => {
  const body = (u: string) => `
upstreams:
  app: { targets: [ { url: "${u}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
`;
  await withRig(body, async ({ g, up }) => {
    const r = rng(0xbeef);
    let sent = 0;
    while (sent < 150) {
      // Raw bytes on the wire must be a valid request line: no spaces or controls unescaped.
      const raw = generatePath(r).replace(
        /[^\x21-\x7e]/g,
        (c) =>
          Array.from(
            new TextEncoder().encode(c),
            (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
          ).join(""),
      ).replaceAll("?", "%3F");
      const n = normalisePath(raw);
      const before = up.received.length;
      const res = await rawGet(g.url(), raw, "localhost");
      if (n.ok) {
        assertEquals(res.status, 200, raw);
        assertEquals(up.received.slice(before).map((x) => x.url), [n.path], raw);
      } else {
        assertEquals(res.status, 400, raw);
        assertEquals(up.received.length, before, raw);
      }
      sent++;
    }
  });
});
