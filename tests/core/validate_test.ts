/** `gateway validate` on broken configs: exit 1, and each error names the line and key. */
import { assertEquals, assertMatch, assertOk } from "../helpers/assert.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function validate(
  yaml: string,
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gw-validate-" });
  const file = `${dir}/broken.yaml`;
  await Deno.writeTextFile(file, yaml);
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "validate", "--config", file],
      env: { ...env, NO_COLOR: "1" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    return { code: r.code, out: out.replaceAll(file, "broken.yaml") };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const OK_TAIL = `
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: users, match: { path: /users }, upstream: users }
`;

/** Each broken config, and what its error must say: `broken.yaml:LINE:COL: KEY: message`. */
const CASES: { name: string; yaml: string; expect: RegExp; env?: Record<string, string> }[] = [
  {
    name: "bad YAML",
    yaml: `listeners:\n  - { name: public, port: 8080\nroutes: []\n`,
    expect: /^broken\.yaml:3:\d+: .*(flow|collection|expected|Missing)/im,
  },
  {
    name: "wrong type",
    yaml: `listeners:\n  - { name: public, port: "eighty" }\n${OK_TAIL}`,
    expect: /^broken\.yaml:2:\d+: listeners\[0\]\.port: expected .*number/m,
  },
  {
    name: "unknown key",
    yaml: `listeners:\n  - { name: public, prot: 8080 }\n${OK_TAIL}`,
    expect:
      /^broken\.yaml:2:\d+: listeners\[0\]\.prot: unknown key "prot" \(did you mean "port"\?\)/m,
  },
  {
    name: "missing env var",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "\${USERS_URL}" } ] }\nroutes:\n  - { name: users, match: { path: /users }, upstream: users }\n`,
    expect: /^broken\.yaml:4:\d+: upstreams\.users\.targets\[0\]\.url: .*USERS_URL/m,
  },
  {
    name: "unknown upstream",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path: /users }, upstream: user }\n`,
    expect: /^broken\.yaml:6:\d+: routes\[0\]\.upstream: .*"user".*did you mean "users"/m,
  },
  {
    name: "bad regex",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path_regex: "^/users/(" }, upstream: users }\n`,
    expect: /^broken\.yaml:6:\d+: routes\[0\]\.match\.path_regex: .*regular expression/m,
  },
  {
    name: "duplicate route name",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path: /a }, upstream: users }\n  - { name: users, match: { path: /b }, upstream: users }\n`,
    expect: /^broken\.yaml:7:\d+: routes\[1\]\.name: .*duplicate/im,
  },
  {
    name: "port clash",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\n  - { name: other, port: 8080 }\n${OK_TAIL}`,
    expect: /^broken\.yaml:3:\d+: listeners\[1\]\.port: port 8080 is already used/m,
  },
  {
    name: "invalid duration",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - name: users\n    match: { path: /users }\n    upstream: users\n    rate_limit: { algorithm: fixed_window, limit: 10, per: 5 minutes }\n`,
    expect: /^broken\.yaml:9:\d+: routes\[0\]\.rate_limit\.per: expected a duration/m,
  },
  {
    name: "HTTP/2 on an mTLS listener",
    yaml:
      `listeners:\n  - name: partners\n    port: 8443\n    tls: { cert: s.crt, key: s.key, client_ca: ca.crt, http2: true }\n${OK_TAIL}`,
    expect:
      /^broken\.yaml:4:\d+: listeners\[0\]\.tls\.http2: HTTP\/2 is not offered with client_ca/m,
  },
  {
    name: "max_connections on an HTTP/2 listener",
    yaml:
      `listeners:\n  - name: public\n    port: 8443\n    max_connections: 100\n    tls: { cert: s.crt, key: s.key, http2: true }\n${OK_TAIL}`,
    expect:
      /^broken\.yaml:4:\d+: listeners\[0\]\.max_connections: max_connections is not available with tls\.http2/m,
  },
  {
    name: "credentials in a target URL",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://svc:pw@127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path: /users }, upstream: users }\n`,
    expect:
      /^broken\.yaml:4:\d+: upstreams\.users\.targets\[0\]\.url: expected a target URL without credentials/m,
  },
  {
    name: "bad URL",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "htp:/nowhere" } ] }\nroutes:\n  - { name: users, match: { path: /users }, upstream: users }\n`,
    expect: /^broken\.yaml:4:\d+: upstreams\.users\.targets\[0\]\.url: expected .*URL/m,
  },
  {
    name: "a version that is not a whole number, unquoted",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nversioning: {}\nroutes:\n  - { name: users, match: { path: /users, version: 1.10 }, upstream: users }\n`,
    expect:
      /^broken\.yaml:7:\d+: routes\[0\]\.match\.version: expected a whole number or a quoted version, got the number 1\.1 \(quote it/m,
  },
  {
    name: "a versioning default that is not a whole number, unquoted",
    yaml: `listeners:\n  - { name: public, port: 8080 }\nversioning: { default: 2.5 }\n${OK_TAIL}`,
    expect:
      /^broken\.yaml:3:\d+: versioning\.default: expected a whole number or a quoted version/m,
  },
  {
    name: "a versioning default no route serves",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nversioning: { default: 7 }\nroutes:\n  - { name: users, match: { path: /users, version: [1, v2] }, upstream: users }\n`,
    expect:
      /^broken\.yaml:5:\d+: versioning\.default: no route serves version "7" \(match\.version lists 1, 2\)/m,
  },
  ...(["methods", "host", "version"] as const).map((key) => ({
    name: `an empty ${key} list (it would match nothing)`,
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nversioning: {}\nroutes:\n  - { name: users, match: { path: /users, ${key}: [] }, upstream: users }\n`,
    expect: new RegExp(
      `^broken\\.yaml:7:\\d+: routes\\[0\\]\\.match\\.${key}: expected at least 1 item`,
      "m",
    ),
  })),
  ...([
    ["path", '"/a b/c"', /" " is not allowed raw in a path \(write %20\)/],
    ["path_exact", '"/x?y=1"', /"\?" starts the query string/],
    ["path", '"/a/../c"', /expected a path without \. or \.\. segments/],
    ["path", '"/a/{id"', /expected \{name\} parameters closed by \}/],
    ["path", '"/a/{id}/{id}"', /expected distinct parameter names, \{id\} is twice/],
  ] as const).map(([key, value, message]) => ({
    name: `a ${key} no request can have: ${value}`,
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { ${key}: ${value} }, upstream: users }\n`,
    expect: new RegExp(
      `^broken\\.yaml:6:\\d+: routes\\[0\\]\\.match\\.${key}: .*${message.source}`,
      "m",
    ),
  })),
  ...([
    ['{ regex: "^/a/(.*)$", replacement: "/b c/$1" }', "replacement", /" " is not allowed raw/],
    ['{ regex: "^/a/(.*)$", replacement: "/b/$1#x" }', "replacement", /"#" starts a fragment/],
    ['{ regex: "^/a/(.*)$", replacement: "/q?inj=1&$1" }', "replacement", /"\?" starts the query/],
    ['{ prefix: "/b?c" }', "prefix", /"\?" starts the query string/],
  ] as const).map(([rewrite, key, message]) => ({
    name: `a rewrite ${key} an upstream cannot receive: ${rewrite}`,
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path: /a }, rewrite: ${rewrite}, upstream: users }\n`,
    expect: new RegExp(
      `^broken\\.yaml:6:\\d+: routes\\[0\\]\\.rewrite\\.${key}: expected text that can stand in a path: .*${message.source}`,
      "m",
    ),
  })),
  {
    name: "a duplicate key in a named entry",
    yaml:
      `upstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\n  users: { targets: [ { url: "http://127.0.0.1:3002" } ] }\nroutes:\n  - { name: users, match: { path: /users }, upstream: users }\n`,
    expect:
      /^broken\.yaml:3:3: upstreams\.users: duplicate key "users" \(also at line 2\): expected each key once per mapping$/m,
  },
  {
    name: "a duplicate key inside a list item",
    yaml:
      `upstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: a, match: { path: /a }, upstream: users }\n  - name: b\n    match:\n      path: /b\n      path: /c\n    upstream: users\n`,
    expect:
      /^broken\.yaml:8:7: routes\[1\]\.match\.path: duplicate key "path" \(also at line 7\): expected each key once per mapping$/m,
  },
  ...([["an empty file", ""], ["a file of comments only", "# gateway\n\n# routes: []\n"]] as const)
    .map(([name, yaml]) => ({
      name,
      yaml,
      expect:
        /^broken\.yaml:1:1: \(root\): the file has no settings: expected a mapping of sections \(listeners, routes, \.\.\.\); write \{\} for none$/m,
    })),
  {
    name: "a header name that is not one, as a key",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path: /users, headers: { "X A": b } }, upstream: users }\n`,
    expect:
      /^broken\.yaml:6:54: routes\[0\]\.match\.headers\.X A: key "X A": expected an HTTP header name \(.*\), got the string "X A"$/m,
  },
  {
    name: "a rewrite mixing its two forms",
    yaml:
      `listeners:\n  - { name: public, port: 8080 }\nupstreams:\n  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }\nroutes:\n  - { name: users, match: { path: /a }, rewrite: { regex: "^/a", replacement: /b, prefix: /c }, upstream: users }\n`,
    expect:
      /^broken\.yaml:6:\d+: routes\[0\]\.rewrite\.prefix: key "prefix" mixes forms: use either regex \+ replacement or prefix, not both$/m,
  },
];

for (const c of CASES) {
  Deno.test(`validate: ${c.name} is reported with line and key`, async () => {
    const r = await validate(c.yaml, c.env);
    assertEquals(r.code, 1, r.out);
    assertMatch(r.out, c.expect, r.out);
  });
}

Deno.test("validate: a good config exits 0 with a summary and the worker count", async () => {
  const r = await validate(`listeners:\n  - { name: public, port: 8080 }\n${OK_TAIL}`);
  assertEquals(r.code, 0, r.out);
  assertEquals(
    r.out.trim(),
    `broken.yaml: OK (1 listener(s), 1 upstream(s), 1 route(s))
workers: ${navigator.hardwareConcurrency} (one per core)`,
  );
});

Deno.test("validate: every error is listed, not just the first", async () => {
  const r = await validate(
    `listeners:\n  - { name: public, prot: 8080 }\nupstreams:\n  users: { targets: [ { url: "nope" } ] }\nroutes:\n  - { name: users, match: { path: /users }, upstream: nobody }\n`,
  );
  assertEquals(r.code, 1);
  assertOk(r.out.includes("listeners[0].prot"), r.out);
  assertOk(r.out.includes("upstreams.users.targets[0].url"), r.out);
  // A reference error in a part that passed the schema comes in the same run.
  assertMatch(r.out, /^broken\.yaml:6:55: routes\[0\]\.upstream: unknown upstream "nobody"$/m);
});

Deno.test("cli: version and help", async () => {
  for (const [args, re] of [[["version"], /^gateway \S+/m], [["--help"], /validate/]] as const) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      stdout: "piped",
    }).output();
    assertEquals(r.code, 0);
    assertMatch(new TextDecoder().decode(r.stdout), re);
  }
});

Deno.test("validate: a rejected value from ${VAR} or under a secret key is not printed", async () => {
  const r = await validate(
    `listeners:\n  - { name: public, port: 8080 }
admin:
  token: \${ADMIN_TOKEN}
auth:
  hs: { kind: jwt, secret: 918273645546372819, algorithms: [HS256] }
  opaque:
    kind: oauth2_introspection
    url: "http://127.0.0.1:3/introspect"
    client_id: gateway
    client_secret: \${CLIENT_SECRET}
${OK_TAIL}`,
    { ADMIN_TOKEN: "5550123498765", CLIENT_SECRET: "true" },
  );
  assertEquals(r.code, 1, r.out);
  for (const secret of ["5550123498765", "918273645546372819", "true"]) {
    assertEquals(r.out.includes(secret), false, `${secret} printed:\n${r.out}`);
  }
  assertMatch(
    r.out,
    /^broken\.yaml:4:10: admin\.token: expected string, got a number from \$\{ADMIN_TOKEN\}$/m,
  );
  assertMatch(r.out, /^broken\.yaml:6:\d+: auth\.hs\.secret: expected string, got a number$/m);
  assertMatch(
    r.out,
    /auth\.opaque\.client_secret: expected string, got a boolean from \$\{CLIENT_SECRET\}$/m,
  );
});

Deno.test("validate: a timer longer than the runtime can hold is refused at its key", async () => {
  // From 2^31 ms a setTimeout fires at once: until 2026-12-07 such a value loaded and, for a
  // bulkhead, turned "wait up to 35 days for a slot" into an immediate 503.
  const r = await validate(
    `server: { drain_timeout_s: 3000000 }
upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    queue_timeout_ms: 3000000000
    max_concurrent: 4
    health_check: { path: /health, interval_s: 2500000 }
routes:
  - { name: users, match: { path: /users }, upstream: users }
`,
  );
  assertEquals(r.code, 1, r.out);
  assertMatch(r.out, /^broken\.yaml:1:\d+: server\.drain_timeout_s: expected at most 2073600 s/m);
  assertMatch(
    r.out,
    /^broken\.yaml:5:\d+: upstreams\.users\.queue_timeout_ms: expected at most 2147483647 ms/m,
  );
  assertMatch(r.out, /^broken\.yaml:7:\d+: upstreams\.users\.health_check\.interval_s: /m);
});

Deno.test("cli: GATEWAY_CONFIG set but empty means the default config file", async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "validate"],
    cwd: root,
    env: { GATEWAY_CONFIG: "", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  // Until 2026-12-07 the empty value was taken as the file name "", which cannot be read.
  assertEquals(r.code, 0, out);
  assertMatch(out, /^config\/gateway\.yaml: OK /m);
});
