/**
 * mTLS through real TLS listeners: client certificates verified against the
 * configured CA, the consumer taken from the SAN URI or the subject CN, and
 * refusals for a missing certificate, one from another CA, an expired one and
 * ones the CA issued for another use, on full and resumed TLS sessions alike.
 * The certificates are fixtures (tests/auth/fixtures/make_certs.sh), and ones
 * openssl makes for the test (tests/helpers/pki.ts).
 */
import { assertEquals, assertError, assertMatch } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { makeTestPki, type TestPki } from "../helpers/pki.ts";
import { opensslGet } from "../helpers/tls.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
async function readFixtures<N extends string>(names: readonly N[]): Promise<Record<N, string>> {
  const texts = await Promise.all(names.map((n) => Deno.readTextFile(new URL(n, FIXTURES))));
  return Object.fromEntries(names.map((n, i) => [n, texts[i]])) as Record<N, string>;
}

/**
 * A gateway whose listener(s) (`listeners`: YAML list items) trust `pki`'s CA as
 * `client_ca.crt`, with the fixture server certificate, in front of upstream `up`;
 * `rest` holds the auth providers, consumers and routes.
 */
async function trustingGateway(
  pki: TestPki,
  upstream: string,
  listeners: string,
  rest: string,
): Promise<TestGateway> {
  const pem = await readFixtures(["server.crt", "server.key"]);
  return startGateway(
    `listeners:
${listeners}
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
${rest}`,
    {
      files: {
        "server.crt": pem["server.crt"],
        "server.key": pem["server.key"],
        "client_ca.crt": pki.ca.pem,
      },
    },
  );
}

/** The listener `m` of `trustingGateway`, its client certificate optional. */
const LISTENER_M =
  "  - { name: m, host: 127.0.0.1, port: 0, tls: { cert: server.crt, key: server.key, client_ca: client_ca.crt } }";

/** Consumer team-a taken from the subject CN, on route /cn. */
const CN_AUTH = `auth:
  cn: { kind: mtls, consumer_from: subject_cn }
consumers:
  - { id: team-a, subjects: [team-a] }
routes:
  - { name: cn, match: { path: /cn }, upstream: up, auth: [cn] }
`;

/** GET `path` on listener `m` presenting `cert` with the PKI's key: the status and JSON body. */
async function presenting(g: TestGateway, pki: TestPki, cert: string, path: string) {
  const { "ca.crt": ca } = await readFixtures(["ca.crt"]);
  const client = Deno.createHttpClient({ caCerts: [ca], cert, key: pki.key });
  try {
    const res = await fetch(`${g.url("m")}${path}`, { client });
    return { status: res.status, body: await res.json() };
  } finally {
    client.close();
  }
}

Deno.test("mtls provider and listeners: verified client certificates end to end", async (t) => {
  const pem = await readFixtures([
    "ca.crt",
    "other_ca.crt",
    "server.crt",
    "server.key",
    "client.crt",
    "client.key",
    "client_other_ca.crt",
    "client_expired.crt",
    "client_chain.crt",
  ]);
  const ca = pem["ca.crt"];
  const key = pem["client.key"];
  const chain = pem["client_chain.crt"];
  const up = startUpstream();
  const tls = (mode: string, clientCa = "ca.crt") =>
    `{ cert: server.crt, key: server.key, client_ca: ${clientCa}, client_cert: ${mode} }`;
  const g = await startGateway(
    `listeners:
  - { name: public, host: 127.0.0.1, port: 0 }
  - { name: partners, host: 127.0.0.1, port: 0, tls: ${tls("required")} }
  - { name: optional, host: 127.0.0.1, port: 0, tls: ${tls("optional")} }
  - { name: other, host: 127.0.0.1, port: 0, tls: ${tls("required", "other_ca.crt")} }
  - name: modern
    host: 127.0.0.1
    port: 0
    tls: { cert: server.crt, key: server.key, client_ca: ca.crt, min_version: "1.3" }
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 5 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  certs:
    kind: mtls
    consumer_from: san_uri
    san_uri_prefix: "spiffe://example.org/"
    claims_to_headers: { fingerprint256: X-Client-Cert-Sha256 }
  cn: { kind: mtls }
consumers:
  - { id: team-a, subjects: ["spiffe://example.org/team-a"], scopes: [partner] }
routes:
  - { name: certs, match: { path: /certs }, upstream: up, auth: [certs], scopes: [partner] }
  - { name: cn, match: { path: /cn }, upstream: up, auth: [cn] }
  - { name: open, match: { path: /open }, upstream: up }
`,
    {
      files: {
        "ca.crt": ca,
        "other_ca.crt": pem["other_ca.crt"],
        "server.crt": pem["server.crt"],
        "server.key": pem["server.key"],
      },
    },
  );
  const clients = {
    good: Deno.createHttpClient({ caCerts: [ca], cert: pem["client.crt"], key }),
    none: Deno.createHttpClient({ caCerts: [ca] }),
    otherCa: Deno.createHttpClient({ caCerts: [ca], cert: pem["client_other_ca.crt"], key }),
    expired: Deno.createHttpClient({ caCerts: [ca], cert: pem["client_expired.crt"], key }),
    chain: Deno.createHttpClient({ caCerts: [ca], cert: chain, key }),
    // The gateway's own certificate: the trusted CA issued it, for serverAuth only.
    serverCert: Deno.createHttpClient({
      caCerts: [ca],
      cert: pem["server.crt"],
      key: pem["server.key"],
    }),
    leafOnly: Deno.createHttpClient({
      caCerts: [ca],
      cert: chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 25),
      key,
    }),
  };
  const call = (client: Deno.HttpClient, listener: string, path: string, init: RequestInit = {}) =>
    fetch(`${g.url(listener)}${path}`, { ...init, client });

  try {
    await t.step("a certificate from the CA passes, its identity in headers", async () => {
      const res = await call(clients.good, "partners", "/certs", {
        headers: { "x-consumer-id": "admin", "x-user-id": "root" },
      });
      const body = await res.json();
      assertEquals(res.status, 200, JSON.stringify(body));
      assertEquals(body.headers["x-consumer-id"], "team-a");
      assertEquals(body.headers["x-user-id"], "spiffe://example.org/team-a");
      assertEquals(body.headers["x-user-scopes"], "partner");
      assertMatch(body.headers["x-client-cert-sha256"], /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      assertEquals(body.headers["x-forwarded-proto"], "https");
      const cn = await (await call(clients.good, "partners", "/cn")).json();
      // The CN lists no consumer (only the SAN does): an unlisted caller of provider cn.
      assertEquals(cn.headers["x-consumer-id"], "cn:team-a");
      assertEquals(cn.headers["x-user-id"], "team-a");
    });

    await t.step(
      "a certificate under an intermediate passes when the client sends the chain",
      async () => {
        const res = await call(clients.chain, "partners", "/certs");
        assertEquals((await res.json()).headers["x-consumer-id"], "team-a");
        const body = await assertError(
          await call(clients.leafOnly, "partners", "/certs"),
          401,
          "invalid_client_certificate",
        );
        assertMatch(body.error.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
      },
    );

    await t.step("bodies stream both ways over the mTLS listener", async () => {
      const payload = new Uint8Array(300_000).fill(7);
      const res = await call(clients.good, "partners", "/open/upload", {
        method: "POST",
        body: payload,
      });
      const body = await res.json();
      assertEquals([res.status, body.method, body.body_bytes], [200, "POST", 300_000]);
      assertEquals(res.headers.has("x-request-id"), true);
    });

    await t.step(
      "client_cert: required refuses a missing, foreign or expired certificate",
      async () => {
        const cases: [Deno.HttpClient, RegExp][] = [
          [clients.none, /requires a client certificate/],
          [clients.otherCa, /not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER)/],
          [clients.expired, /not trusted \(CERT_HAS_EXPIRED\)/],
        ];
        for (const [client, message] of cases) {
          for (const path of ["/certs", "/open", "/no-such-route"]) {
            const res = await call(client, "partners", path);
            assertEquals(res.headers.get("www-authenticate"), 'Certificate realm="gateway"');
            const body = await assertError(res, 401, "invalid_client_certificate");
            assertMatch(body.error.message, message);
          }
        }
        assertEquals(up.received.filter((r) => r.url === "/no-such-route").length, 0);
      },
    );

    await t.step("client_cert: optional leaves it to the route", async () => {
      assertEquals((await (await call(clients.none, "optional", "/open")).json()).url, "/open");
      await assertError(await call(clients.none, "optional", "/certs"), 401, "missing_credentials");
      const expired = await assertError(
        await call(clients.expired, "optional", "/certs"),
        401,
        "invalid_client_certificate",
      );
      assertMatch(expired.error.message, /CERT_HAS_EXPIRED/);
      const ok = await call(clients.good, "optional", "/certs");
      assertEquals((await ok.json()).headers["x-consumer-id"], "team-a");
    });

    await t.step(
      "resumed sessions: a refused certificate stays refused, per listener CA",
      async () => {
        // `connection: close` makes every request a new connection, which resumes the TLS session.
        const close = { headers: { connection: "close" } };
        const refusedTwice = async (client: Deno.HttpClient, listener: string, reason: RegExp) => {
          const answers = [];
          for (let i = 0; i < 2; i++) answers.push(await call(client, listener, "/open", close));
          // The second answer comes on a resumed session.
          assertEquals(answers.map((res) => res.status), [401, 401]);
          for (const res of answers) {
            const body = await assertError(res, 401, "invalid_client_certificate");
            assertMatch(body.error.message, reason);
          }
        };
        await refusedTwice(clients.expired, "partners", /CERT_HAS_EXPIRED/);
        // A certificate the CA issued for another use stays refused once its session is resumed.
        await refusedTwice(clients.serverCert, "partners", /INVALID_PURPOSE/);
        const good = await call(clients.good, "partners", "/open", close);
        assertEquals((await drain(good)).status, 200);
        // The session from a listener that trusts the certificate does not open one that does not.
        await refusedTwice(clients.good, "other", /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
        const again = await call(clients.good, "partners", "/open", close);
        assertEquals((await drain(again)).status, 200);
      },
    );

    await t.step("min_version 1.3 is enforced on mTLS listeners", async () => {
      const port = new URL(g.url("modern")).port;
      const handshake = async (version: string) => {
        const out = await new Deno.Command("openssl", {
          args: ["s_client", "-connect", `127.0.0.1:${port}`, version, "-brief"],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        return new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      };
      assertMatch(await handshake("-tls1_3"), /Protocol version: TLSv1\.3/);
      assertMatch(await handshake("-tls1_2"), /alert protocol version/);
    });

    await t.step("a plain listener has no certificate to offer", async () => {
      const res = await fetch(`${g.url("public")}/certs`);
      assertEquals(res.headers.get("www-authenticate"), 'Certificate realm="gateway"');
      await assertError(res, 401, "missing_credentials");
    });
  } finally {
    for (const c of Object.values(clients)) c.close();
    await g.close();
    await up.close();
  }
});

Deno.test("mtls listeners: a certificate the client CA issued for another use is refused, resumed sessions too", async (t) => {
  const pki = await makeTestPki();
  const up = startUpstream();
  const g = await trustingGateway(
    pki,
    up.url,
    `  - name: partners
    host: 127.0.0.1
    port: 0
    tls: { cert: server.crt, key: server.key, client_ca: client_ca.crt, client_cert: required }`,
    CN_AUTH,
  );
  let sessions = 0;
  /** A full handshake, then a resumed one, presenting a certificate with `extensions`. */
  const twice = async (extensions: string | null) => {
    const cert = (await pki.issue("team-a", extensions)).file;
    const session = `${pki.dir}/session-${sessions++}.pem`;
    const exchanges = [];
    for (let i = 0; i < 2; i++) {
      exchanges.push(
        await opensslGet(g.url("partners"), "/cn", { cert, key: pki.keyFile, session }),
      );
    }
    assertEquals(exchanges.map((e) => e.resumed), [false, true]);
    return exchanges.map((e) => e.response);
  };
  try {
    await t.step("clientAuth: the consumer, on both handshakes", async () => {
      for (const res of await twice("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth")) {
        assertEquals(res.status, 200, res.raw);
        assertEquals(JSON.parse(res.body).headers["x-consumer-id"], "team-a");
      }
    });
    const refusals: [string, string | null, RegExp][] = [
      [
        "serverAuth only",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth",
        /INVALID_PURPOSE/,
      ],
      // The TLS layer refuses it on a full handshake too, under another name.
      ["anyExtendedKeyUsage only", "extendedKeyUsage=anyExtendedKeyUsage", /INVALID_PURPOSE/],
      ["X.509 v1", null, /UNSUPPORTED_CERT_VERSION/],
    ];
    for (const [what, extensions, reason] of refusals) {
      await t.step(`${what}: 401 on the full handshake and on the resumed one`, async () => {
        const answers = await twice(extensions);
        assertEquals(answers.map((res) => res.status), [401, 401]);
        for (const res of answers) {
          const body = JSON.parse(res.body);
          assertEquals(body.error.code, "invalid_client_certificate");
          assertMatch(body.error.message, reason);
        }
      });
    }
    assertEquals(up.received.length, 2);
  } finally {
    await g.close();
    await up.close();
    await pki.close();
  }
});

async function drain(res: Response): Promise<Response> {
  await res.body?.cancel();
  return res;
}

// Names were read from node's `subjectaltname` text, where an email SAN or a directoryName
// holding `, URI:...` reads as one more SAN: a certificate with no URI or DNS name came in as
// the consumer such text named.
Deno.test("mtls listeners: the identity is the certificate's own SAN entries, not text inside another name", async () => {
  const pki = await makeTestPki();
  const up = startUpstream();
  const g = await trustingGateway(
    pki,
    up.url,
    LISTENER_M,
    `auth:
  uri: { kind: mtls, consumer_from: san_uri, san_uri_prefix: "spiffe://example.org/" }
  dns: { kind: mtls, consumer_from: san_dns }
  email: { kind: mtls, consumer_from: san_email }
consumers:
  - { id: team-a, subjects: ["spiffe://example.org/team-a", "admin.internal"] }
  - { id: mail, subjects: ["a@b.example, URI:spiffe://example.org/team-a, DNS:admin.internal"] }
routes:
  - { name: uri, match: { path: /uri }, upstream: up, auth: [uri] }
  - { name: dns, match: { path: /dns }, upstream: up, auth: [dns] }
  - { name: email, match: { path: /email }, upstream: up, auth: [email] }
`,
  );
  const leaf = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
  const forged = [
    await pki.issue(
      "x",
      `${leaf}subjectAltName=@alt\n[alt]\nemail.1 = "a@b.example, URI:spiffe://example.org/team-a, DNS:admin.internal"`,
    ),
    await pki.issue(
      "x",
      `${leaf}subjectAltName=dirName:dn\n[dn]\nCN = "URI:spiffe://example.org/team-a, DNS:admin.internal"`,
    ),
  ];
  const genuine = await pki.issue(
    "x",
    `${leaf}subjectAltName=URI:spiffe://example.org/team-a,DNS:admin.internal`,
  );
  const call = (cert: string, path: string) => presenting(g, pki, cert, path);
  try {
    for (const cert of forged) {
      for (const path of ["/uri", "/dns"]) {
        const res = await call(cert.pem, path);
        assertEquals(res.status, 401, `${path}: ${JSON.stringify(res.body)}`);
        assertEquals(res.body.error.code, "invalid_client_certificate");
      }
    }
    // The email SAN is one name, commas and all.
    const email = await call(forged[0]!.pem, "/email");
    assertEquals(email.body.headers["x-consumer-id"], "mail");
    for (const path of ["/uri", "/dns"]) {
      const res = await call(genuine.pem, path);
      assertEquals(res.body.headers["x-consumer-id"], "team-a", path);
    }
  } finally {
    await g.close();
    await up.close();
    await pki.close();
  }
});

Deno.test("mtls listeners: a subject with several CNs names no consumer", async () => {
  const pki = await makeTestPki();
  const up = startUpstream();
  const g = await trustingGateway(pki, up.url, LISTENER_M, CN_AUTH);
  const leaf = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth";
  const call = async (subject: string) =>
    presenting(g, pki, (await pki.issue(subject, leaf)).pem, "/cn");
  try {
    const one = await call("/O=Acme/CN=team-a");
    assertEquals(one.body.headers["x-consumer-id"], "team-a");
    // Until 2026-12-07 the first was read, whichever of them the CA had checked.
    for (const subject of ["/CN=team-a/CN=someone-else", "/CN=someone-else/CN=team-a"]) {
      const res = await call(subject);
      assertEquals([res.status, res.body.error.code], [401, "invalid_client_certificate"], subject);
    }
    assertEquals(up.received.length, 1);
  } finally {
    await g.close();
    await up.close();
    await pki.close();
  }
});
