/**
 * The gateway's own client certificate check (the only one on a resumed TLS
 * session) on certificates openssl makes for the test: a certificate the CA
 * issued for another use, or that the TLS layer would refuse, is refused here.
 */
import { X509Certificate } from "node:crypto";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { CA_EXTENSIONS, makeTestPki, type TestCert } from "../helpers/pki.ts";
import { ClientCertVerifier } from "../../lib/server/client_cert_verifier.ts";

const der = (c: TestCert): Uint8Array => new X509Certificate(c.pem).raw;
const caWithPathLen = (n: number) =>
  `basicConstraints=critical,CA:TRUE,pathlen:${n}\nkeyUsage=critical,keyCertSign,cRLSign`;

Deno.test("client certificate verifier: purposes, versions, critical extensions, path lengths", async (t) => {
  const pki = await makeTestPki();
  const verifier = new ClientCertVerifier(pki.ca.pem);
  const verdict = (leaf: TestCert, ...presented: TestCert[]) =>
    verifier.verify(der(leaf), presented.map(der), Date.now());
  const leaf = (extensions: string | null, issuer?: TestCert) =>
    pki.issue("client", extensions, issuer);
  const intermediate = (extensions: string, issuer?: TestCert) =>
    pki.issue("Intermediate", extensions, issuer);

  try {
    await t.step("Extended Key Usage, when present, lists clientAuth", async () => {
      const cases: [string | null, string | null][] = [
        ["extendedKeyUsage=clientAuth", null],
        ["extendedKeyUsage=critical,serverAuth,clientAuth", null],
        ["extendedKeyUsage=anyExtendedKeyUsage,clientAuth", null],
        ["basicConstraints=CA:FALSE", null],
        ["extendedKeyUsage=serverAuth", "INVALID_PURPOSE"],
        // As rustls/webpki (the TLS layer) and OpenSSL decide.
        ["extendedKeyUsage=anyExtendedKeyUsage", "INVALID_PURPOSE"],
        ["extendedKeyUsage=emailProtection,codeSigning", "INVALID_PURPOSE"],
      ];
      for (const [extensions, expected] of cases) {
        assertEquals(verdict(await leaf(extensions)), expected, String(extensions));
      }
    });

    await t.step("the leaf is X.509 v3, not a CA, and may sign", async () => {
      assertEquals(verdict(await leaf(null)), "UNSUPPORTED_CERT_VERSION");
      assertEquals(verdict(await leaf(CA_EXTENSIONS)), "INVALID_PURPOSE");
      assertEquals(verdict(await leaf("keyUsage=critical,digitalSignature")), null);
      assertEquals(
        verdict(await leaf("keyUsage=critical,keyEncipherment")),
        "KEYUSAGE_NO_DIGITAL_SIGNATURE",
      );
    });

    await t.step("an unknown critical extension is refused, a known one is not", async () => {
      const unknownCritical = await leaf("1.3.6.1.4.1.99999.1=critical,ASN1:UTF8String:x");
      assertEquals(verdict(unknownCritical), "UNHANDLED_CRITICAL_EXTENSION");
      const unknown = await leaf("1.3.6.1.4.1.99999.1=ASN1:UTF8String:x");
      assertEquals(verdict(unknown), null);
      const known = await leaf(
        "subjectAltName=critical,URI:spiffe://example.org/a\n" +
          "certificatePolicies=critical,2.5.29.32.0",
      );
      assertEquals(verdict(known), null);
    });

    await t.step("pathLenConstraint holds for intermediates and the configured CA", async () => {
      const pathLen0 = await intermediate(caWithPathLen(0));
      const pathLen1 = await intermediate(caWithPathLen(1));
      const client = "extendedKeyUsage=clientAuth";
      assertEquals(verdict(await leaf(client, pathLen0), pathLen0), null);
      for (
        const [top, expected] of [[pathLen0, "PATH_LENGTH_EXCEEDED"], [pathLen1, null]] as const
      ) {
        const below = await pki.issue("Sub", CA_EXTENSIONS, top);
        assertEquals(verdict(await leaf(client, below), below, top), expected);
      }
      // The same path, with the pathlen:0 intermediate as the configured CA.
      const sub = await pki.issue("Sub", CA_EXTENSIONS, pathLen0);
      const anchoredLow = new ClientCertVerifier(pathLen0.pem);
      const viaSub = await leaf(client, sub);
      assertEquals(anchoredLow.verify(der(viaSub), [der(sub)], Date.now()), "PATH_LENGTH_EXCEEDED");
    });

    await t.step("intermediates: v3 CAs for clients, that may sign certificates", async () => {
      const cases: [string, RegExp][] = [
        [`${CA_EXTENSIONS}\nextendedKeyUsage=clientAuth`, /^null$/],
        [`${CA_EXTENSIONS}\nextendedKeyUsage=serverAuth`, /^INVALID_PURPOSE$/],
        [
          `${CA_EXTENSIONS}\n1.3.6.1.4.1.99999.1=critical,ASN1:NULL`,
          /^UNHANDLED_CRITICAL_EXTENSION$/,
        ],
        // Evaluated (tests/auth/name_constraints_test.ts): a client with no dNSName passes.
        [`${CA_EXTENSIONS}\nnameConstraints=critical,permitted;DNS:example.org`, /^null$/],
        [
          `${CA_EXTENSIONS}\nnameConstraints=critical,permitted;RID:1.2.3.4`,
          /^UNSUPPORTED_CONSTRAINT_TYPE$/,
        ],
        // Deno's checkIssued already refuses such an issuer, as OpenSSL's X509_check_issued does.
        [
          "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature",
          /^(KEYUSAGE_NO_CERTSIGN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/,
        ],
      ];
      for (const [extensions, expected] of cases) {
        const ca = await intermediate(extensions);
        const client = await leaf("extendedKeyUsage=clientAuth", ca);
        assertMatch(String(verdict(client, ca)), expected, extensions);
      }
    });

    await t.step("what is not a certificate is unparseable", async () => {
      const good = der(await leaf("extendedKeyUsage=clientAuth"));
      assertEquals(
        verifier.verify(good.subarray(0, good.length - 1), [], Date.now()),
        "CERT_UNPARSEABLE",
      );
      assertEquals(
        verifier.verify(good, [new Uint8Array([0x30, 0x03, 1])], Date.now()),
        "CERT_UNPARSEABLE",
      );
    });
  } finally {
    await pki.close();
  }
});
