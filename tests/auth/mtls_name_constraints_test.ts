/**
 * Name constraints through real mTLS listeners, with PKIs openssl makes: a
 * client within its CAs' constraints passes, one outside them gets the answer
 * every other refused certificate gets, on the full TLS handshake and on the
 * resumed one (where the gateway's own check is the only one). Then what the
 * TLS layer itself (Deno 2.9.6's rustls-webpki 0.103.13) decides on a full
 * handshake, pinned: the gateway must refuse at least that.
 */
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { startGateway } from "../helpers/gateway.ts";
import { CA_EXTENSIONS, makeTestPki, type TestCert, type TestPki } from "../helpers/pki.ts";
import { opensslGet } from "../helpers/tls.ts";
import { ClientCertVerifier } from "../../lib/server/client_cert_verifier.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, FIXTURES));
const CLIENT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth";
const withNames = (san: string) => `${CLIENT}\nsubjectAltName=${san}`;
const constrainedCa = (nc: string) => `${CA_EXTENSIONS}\nnameConstraints=critical,${nc}`;

Deno.test("mtls listeners: name constraints of the configured CA and of intermediates, full and resumed sessions", async (t) => {
  // The configured CA permits example.org and 10/8 but not bad.example.org; its intermediate
  // permits team.example.org and bad.example.org only.
  const pkis = {
    dns: await makeTestPki(constrainedCa(
      "permitted;DNS:example.org,permitted;IP:10.0.0.0/255.0.0.0,excluded;DNS:bad.example.org",
    )),
    // A form the gateway does not evaluate.
    rid: await makeTestPki(constrainedCa("permitted;RID:1.2.3.4")),
    // Forms the TLS layer refuses rather than evaluates (name_constraints.ts).
    email: await makeTestPki(constrainedCa("permitted;email:example.org")),
    dir: await makeTestPki(`${constrainedCa("permitted;dirName:acme")}\n[acme]\nO=Acme`),
  };
  const intermediate = await pkis.dns.issue(
    "Team CA",
    constrainedCa("permitted;DNS:team.example.org,permitted;DNS:bad.example.org"),
  );
  const [serverCrt, serverKey] = await Promise.all([read("server.crt"), read("server.key")]);
  const up = startUpstream();
  const listener = (name: keyof typeof pkis) =>
    `  - name: ${name}
    host: 127.0.0.1
    port: 0
    tls: { cert: server.crt, key: server.key, client_ca: ${name}.crt, client_cert: required }`;
  const g = await startGateway(
    `listeners:
${Object.keys(pkis).map((name) => listener(name as keyof typeof pkis)).join("\n")}
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
auth:
  cn: { kind: mtls, consumer_from: subject_cn }
consumers:
  - { id: team-a, subjects: [team-a] }
routes:
  - { name: cn, match: { path: /cn }, upstream: up, auth: [cn] }
`,
    {
      files: {
        "server.crt": serverCrt!,
        "server.key": serverKey!,
        ...Object.fromEntries(
          Object.entries(pkis).map(([name, pki]) => [`${name}.crt`, pki.ca.pem]),
        ),
      },
    },
  );
  let sessions = 0;
  /** A full handshake, then a resumed one, on `listener`, presenting `cert` (and `chain`). */
  const twice = async (listener: keyof typeof pkis, cert: TestCert, chain?: TestCert) => {
    const pki = pkis[listener];
    const session = `${pki.dir}/session-${sessions++}.pem`;
    const o = {
      cert: cert.file,
      key: pki.keyFile,
      session,
      ...(chain ? { chain: chain.file } : {}),
    };
    const exchanges = [];
    for (let i = 0; i < 2; i++) exchanges.push(await opensslGet(g.url(listener), "/cn", o));
    assertEquals(exchanges.map((e) => e.resumed), [false, true]);
    return exchanges.map((e) => e.response);
  };
  const passes = async (listener: keyof typeof pkis, cert: TestCert, chain?: TestCert) => {
    for (const res of await twice(listener, cert, chain)) {
      assertEquals(res.status, 200, res.raw);
      assertEquals(JSON.parse(res.body).headers["x-consumer-id"], "team-a");
    }
  };
  /** The answer of every refused certificate: 401 invalid_client_certificate, naming `reason`. */
  const refused = async (
    listener: keyof typeof pkis,
    reason: string,
    cert: TestCert,
    chain?: TestCert,
  ) => {
    for (const res of await twice(listener, cert, chain)) {
      assertEquals(res.status, 401, res.raw);
      assertEquals(res.headers.get("www-authenticate"), 'Certificate realm="gateway"');
      const body = JSON.parse(res.body);
      assertEquals(body.error.code, "invalid_client_certificate");
      assertEquals(body.error.message, `The client certificate is not trusted (${reason})`);
    }
  };
  const leaf = (san: string, issuer?: TestCert) => pkis.dns.issue("team-a", withNames(san), issuer);

  try {
    await t.step("within the configured CA's subtrees: passes", async () => {
      await passes("dns", await leaf("DNS:team-a.example.org,IP:10.1.2.3"));
      await passes("dns", await leaf("DNS:EXAMPLE.org"));
      // No name of a constrained form: nothing to hold (the CN is no dNSName).
      await passes("dns", await pkis.dns.issue("team-a", CLIENT));
      await passes("dns", await leaf("URI:spiffe://other.org/team-a,email:a@other.org"));
    });

    await t.step(
      "outside the permitted subtrees, or in an excluded one: refused like any other",
      async () => {
        // The answer every refused certificate gets, for comparison.
        await refused(
          "dns",
          "INVALID_PURPOSE",
          await pkis.dns.issue("team-a", "extendedKeyUsage=serverAuth"),
        );
        await refused("dns", "PERMITTED_VIOLATION", await leaf("DNS:team-a.other.org"));
        await refused(
          "dns",
          "PERMITTED_VIOLATION",
          await leaf("DNS:team-a.example.org,DNS:x.other.org"),
        );
        await refused("dns", "PERMITTED_VIOLATION", await leaf("DNS:notexample.org"));
        await refused("dns", "PERMITTED_VIOLATION", await leaf("IP:192.168.0.1"));
        await refused("dns", "PERMITTED_VIOLATION", await leaf("IP:2001:db8::1"));
        await refused("dns", "EXCLUDED_VIOLATION", await leaf("DNS:x.bad.example.org"));
        await refused("dns", "EXCLUDED_VIOLATION", await leaf("DNS:*.example.org"));
        await refused("dns", "UNSUPPORTED_NAME_SYNTAX", await leaf("DNS:team-a.example.org."));
      },
    );

    await t.step(
      "under an intermediate: its constraints and the configured CA's both hold",
      async () => {
        await passes("dns", await leaf("DNS:a.team.example.org", intermediate), intermediate);
        // The intermediate permits it, the configured CA excludes it.
        const bad = await leaf("DNS:x.bad.example.org", intermediate);
        await refused("dns", "EXCLUDED_VIOLATION", bad, intermediate);
        // The configured CA permits it, the intermediate does not.
        const other = await leaf("DNS:other.example.org", intermediate);
        await refused("dns", "PERMITTED_VIOLATION", other, intermediate);
      },
    );

    await t.step(
      "a form the gateway does not evaluate, or the TLS layer refuses: refused",
      async () => {
        await refused("rid", "UNSUPPORTED_CONSTRAINT_TYPE", await pkis.rid.issue("team-a", CLIENT));
        // Within the subtree, and still refused: the TLS layer refuses such a full handshake.
        const email = await pkis.email.issue("team-a", withNames("email:team-a@example.org"));
        await refused("email", "UNSUPPORTED_CONSTRAINT_TYPE", email);
        const dir = await pkis.dir.issue("/O=Acme/CN=team-a", CLIENT);
        await refused("dir", "UNSUPPORTED_CONSTRAINT_TYPE", dir);
        // The subject's emailAddress is held to rfc822Name constraints: evaluated, no TLS veto.
        await passes(
          "email",
          await pkis.email.issue("/CN=team-a/emailAddress=a@example.org", CLIENT),
        );
        const outside = await pkis.email.issue("/CN=team-a/emailAddress=a@other.org", CLIENT);
        await refused("email", "PERMITTED_VIOLATION", outside);
      },
    );
    assertEquals(up.received.filter((r) => r.url === "/cn").length, 12);
  } finally {
    await g.close();
    await up.close();
    for (const pki of Object.values(pkis)) await pki.close();
  }
});

/**
 * Whether the TLS layer authorizes `leaf` (sent with `chain`) against `ca` on a full handshake:
 * `socket.authorized` of a bare node:https server, as the mTLS listener builds it.
 */
async function tlsAuthorizes(pki: TestPki, ca: string, leaf: TestCert, chain?: TestCert) {
  const [cert, key] = await Promise.all([read("server.crt"), read("server.key")]);
  const server = https.createServer(
    { cert, key, ca, requestCert: true, rejectUnauthorized: false },
    (req, res) => res.end(`authorized=${(req.socket as TLSSocket).authorized};`),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as { port: number };
    const res = await opensslGet(`https://127.0.0.1:${port}`, "/", {
      cert: leaf.file,
      key: pki.keyFile,
      session: `${pki.dir}/tls-${crypto.randomUUID()}.pem`,
      ...(chain ? { chain: chain.file } : {}),
    });
    assertEquals(res.response.status, 200, res.response.raw);
    // What follows the body is openssl's own report of the session.
    return res.response.body.startsWith("authorized=true;");
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

Deno.test("TLS layer (Deno 2.9.6, rustls-webpki 0.103.13) on full handshakes: the gateway refuses at least what it refuses", async (t) => {
  /** [root's name constraints, client subject, client SAN, whether the TLS layer authorizes] */
  const cases: [string, string, string, boolean][] = [
    ["permitted;DNS:example.org", "/CN=c", "DNS:a.example.org", true],
    ["permitted;DNS:example.org", "/CN=c", "DNS:a.other.org", false],
    ["permitted;DNS:.example.org", "/CN=c", "DNS:example.org", false],
    ["excluded;DNS:bad.example.org", "/CN=c", "DNS:*.example.org", false],
    ["permitted;DNS:a.example.org", "/CN=c", "DNS:*.example.org", false],
    ["excluded;DNS:x.a.example.org", "/CN=c", "DNS:*.example.org", true],
    ["permitted;DNS:example.org", "/CN=c", "DNS:a.example.org.", false],
    ["permitted;DNS:example.org", "/CN=c", "DNS:a_b.example.org", true],
    ["permitted;IP:10.0.0.0/255.0.0.0", "/CN=c", "IP:10.1.2.3", true],
    ["permitted;IP:10.0.0.0/255.0.0.0", "/CN=c", "IP:2001:db8::1", false],
    ["permitted;IP:10.0.0.0/255.0.255.0", "/CN=c", "IP:10.1.0.1", false],
    // The subject CN is not read as a dNSName.
    ["permitted;DNS:example.org", "/CN=host.other.org", "", true],
    ["excluded;DNS:other.org", "/CN=host.other.org", "", true],
    // rfc822Name and URI constraints are not evaluated: any such name in the SAN is refused...
    ["permitted;email:example.org", "/CN=c", "email:a@example.org", false],
    ["excluded;email:other.org", "/CN=c", "email:a@example.org", false],
    ["permitted;URI:example.org", "/CN=c", "URI:spiffe://example.org/a", false],
    // ...a certificate without one passes, and the subject's emailAddress is not looked at.
    ["permitted;email:example.org", "/CN=c", "DNS:a.b", true],
    ["permitted;email:example.org", "/CN=c/emailAddress=a@other.org", "", true],
    // directoryName constraints are not evaluated: every path under one is refused.
    ["permitted;dirName:acme\n[acme]\nO=Acme", "/O=Acme/CN=c", "", false],
    ["excluded;dirName:evil\n[evil]\nO=Evil", "/O=Acme/CN=c", "", false],
    // Other forms: refused only when the certificate has such a name (the gateway: always).
    ["permitted;RID:1.2.3.4", "/CN=c", "", true],
    ["permitted;RID:1.2.3.4", "/CN=c", "RID:1.2.3.4", false],
  ];
  /** The TLS layer's verdict, and the gateway's check's: never a pass where the TLS layer refuses. */
  const tlsVerdict = async (pki: TestPki, client: TestCert, chain?: TestCert) => {
    const authorized = await tlsAuthorizes(pki, pki.ca.pem, client, chain);
    const ours = new ClientCertVerifier(pki.ca.pem).verify(
      new X509Certificate(client.pem).raw,
      chain ? [new X509Certificate(chain.pem).raw] : [],
      Date.now(),
    );
    assertOk(authorized || ours !== null, "the gateway passes what the TLS layer refuses");
    return authorized;
  };
  for (const [nc, subject, san, authorized] of cases) {
    await t.step(`${nc.split("\n")[0]}; ${subject} ${san}`, async () => {
      const pki = await makeTestPki(constrainedCa(nc));
      try {
        const client = await pki.issue(subject, san ? withNames(san) : CLIENT);
        assertEquals(await tlsVerdict(pki, client), authorized);
      } finally {
        await pki.close();
      }
    });
  }

  await t.step("an intermediate's constraints hold for the certificates below it", async () => {
    const pki = await makeTestPki();
    try {
      const ca = await pki.issue("Team CA", constrainedCa("permitted;DNS:team.example.org"));
      for (const [name, authorized] of [["a.team.example.org", true], ["a.example.org", false]]) {
        const client = await pki.issue("c", withNames(`DNS:${name}`), ca);
        assertEquals(await tlsVerdict(pki, client, ca), authorized, String(name));
      }
    } finally {
      await pki.close();
    }
  });
});
