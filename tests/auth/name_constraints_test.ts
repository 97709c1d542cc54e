/**
 * The matching rules of name constraints, form by form (lib/server/name_forms.ts,
 * lib/server/directory_name.ts), and the reading of the extension and of a
 * certificate's names from DER (lib/server/name_constraints.ts): malformed
 * input is an answer that refuses, never a throw. Through a real listener:
 * tests/auth/mtls_name_constraints_test.ts.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { readRoot } from "../../lib/server/der.ts";
import type { CertProfile } from "../../lib/server/cert_profile.ts";
import { dnWithin, rdnsOf } from "../../lib/server/directory_name.ts";
import {
  dnsConstraintOf,
  dnsNameOf,
  dnsWithin,
  emailConstraintOf,
  emailWithin,
  ipAddressOf,
  ipRangeOf,
  ipWithin,
  mailboxOf,
  uriConstraintOf,
  uriHostOf,
  uriWithin,
} from "../../lib/server/name_forms.ts";
import {
  compileNameConstraints,
  pathNameConstraintsError,
} from "../../lib/server/name_constraints.ts";

/** `name` against `constraint`, both read as their syntax allows; throws if either is not. */
function dns(name: string, constraint: string): string {
  const n = dnsNameOf(name, true);
  const c = dnsConstraintOf(constraint);
  assertOk(n !== null && c !== null, `${name} / ${constraint}`);
  return dnsWithin(n, c);
}

Deno.test("dNSName: a host holds itself and every name below it; a leading dot only the names below", () => {
  const cases: [string, string, string][] = [
    ["example.com", "example.com", "yes"],
    ["a.example.com", "example.com", "yes"],
    ["a.b.example.com", "example.com", "yes"],
    ["A.Example.COM", "example.COM", "yes"],
    // Whole labels only.
    ["aexample.com", "example.com", "no"],
    ["example.com.evil.org", "example.com", "no"],
    ["com", "example.com", "no"],
    [".example.com".slice(1), ".example.com", "no"],
    ["a.example.com", ".example.com", "yes"],
    ["a.b.example.com", ".Example.com", "yes"],
    ["aexample.com", ".example.com", "no"],
    ["anything.org", "", "yes"],
    ["a_b.example.com", "example.com", "yes"],
  ];
  for (const [name, constraint, expected] of cases) {
    assertEquals(dns(name, constraint), expected, `${name} in ${constraint}`);
  }
});

Deno.test("dNSName: wildcards, permitted when every name they stand for is, excluded when one may be", () => {
  const cases: [string, string][] = [
    ["example.com", "yes"],
    [".example.com", "yes"],
    ["com", "yes"],
    ["", "yes"],
    // One label below: one of the names it stands for.
    ["a.example.com", "maybe"],
    [".a.example.com", "maybe"],
    // Two labels below: none of them.
    ["x.a.example.com", "no"],
    ["b.example.com.org", "no"],
    ["other.org", "no"],
  ];
  for (const [constraint, expected] of cases) {
    assertEquals(dns("*.example.com", constraint), expected, constraint);
  }
});

Deno.test("dNSName syntax: what rustls/webpki takes as a name and as a constraint", () => {
  for (const ok of ["a", "a.b", "a_b.example.com", "xn--bcher-kva.example", "a-b.c", "1a.com"]) {
    assertOk(dnsNameOf(ok) !== null, ok);
  }
  const label63 = "a".repeat(63);
  assertOk(dnsNameOf(`${label63}.com`) !== null);
  const bad = [
    "",
    "a..b",
    "a.example.com.",
    ".a.example.com",
    "-a.b",
    "a-.b",
    "a.123",
    "10.0.0.1",
    "a b.c",
    "ex%61mple.com",
    "bücher.example",
    `${label63}a.com`,
    `${"a.".repeat(127)}ab`,
  ];
  for (const name of bad) assertEquals(dnsNameOf(name, true), null, name);
  // Wildcards: a whole first label, two labels after it at least, in presented names only.
  assertEquals(dnsNameOf("*.example.com"), null);
  assertEquals(dnsNameOf("*.example.com", true), "*.example.com");
  for (const name of ["*.com", "*", "a*.example.com", "a.*.example.com", "*.*.example.com"]) {
    assertEquals(dnsNameOf(name, true), null, name);
  }
  for (const c of ["", "example.com", ".example.com", "com"]) {
    assertOk(dnsConstraintOf(c) !== null, c);
  }
  for (const c of [".", "example.com.", "*.example.com", "..example.com", "a..com"]) {
    assertEquals(dnsConstraintOf(c), null, c);
  }
});

Deno.test("rfc822Name: a mailbox, every mailbox on a host, or on the hosts below a domain", () => {
  const within = (name: string, constraint: string) => {
    const n = mailboxOf(name);
    const c = emailConstraintOf(constraint);
    assertOk(n !== null && c !== null, `${name} / ${constraint}`);
    return emailWithin(n, c);
  };
  const cases: [string, string, string][] = [
    // A mailbox: its local part exactly, its host without case.
    ["u@example.com", "u@example.com", "yes"],
    ["u@EXAMPLE.com", "u@example.com", "yes"],
    ["U@example.com", "u@example.com", "no"],
    ["v@example.com", "u@example.com", "no"],
    ["u@sub.example.com", "u@example.com", "no"],
    // A host: every mailbox on it, none below it.
    ["anyone@example.com", "example.com", "yes"],
    ["anyone@Example.Com", "example.com", "yes"],
    ["anyone@sub.example.com", "example.com", "no"],
    ["anyone@notexample.com", "example.com", "no"],
    // A leading dot: the hosts below, not the domain's own.
    ["anyone@sub.example.com", ".example.com", "yes"],
    ["anyone@a.b.example.com", ".example.com", "yes"],
    ["anyone@example.com", ".example.com", "no"],
    ["anyone@badexample.com", ".example.com", "no"],
  ];
  for (const [name, constraint, expected] of cases) {
    assertEquals(within(name, constraint), expected, `${name} in ${constraint}`);
  }
  for (const bad of ["no-at-sign", "@example.com", "u@", "u v@example.com", "u@bad..host"]) {
    assertEquals(mailboxOf(bad), null, bad);
  }
  assertEquals(mailboxOf("a@b@example.com"), { local: "a@b", host: "example.com" });
  for (const bad of ["", "@example.com", "u@", ".", "example.com."]) {
    assertEquals(emailConstraintOf(bad), null, bad);
  }
});

Deno.test("uniformResourceIdentifier: the URI's host; a host constraint is that host, strictly", () => {
  const hosts: [string, string | null][] = [
    ["spiffe://example.org/ns/team-a", "example.org"],
    ["https://u:p@Host.Example.org:8443/p?q#f", "host.example.org"],
    ["https://example.org?q", "example.org"],
    ["https://example.org#f", "example.org"],
    ["HTTPS://example.org:/", "example.org"],
    // No host to hold to a constraint: refused rather than let pass.
    ["urn:example:animal", null],
    ["mailto:u@example.org", null],
    ["file:///etc/passwd", null],
    ["https://10.0.0.1/", null],
    ["https://[2001:db8::1]:8443/", null],
    ["https://ex%61mple.org/", null],
    ["https://example.org:http/", null],
    ["example.org", null],
  ];
  for (const [uri, host] of hosts) assertEquals(uriHostOf(uri), host, uri);
  const cases: [string, string, string][] = [
    ["example.org", "example.org", "yes"],
    ["example.org", "Example.ORG", "yes"],
    // RFC 5280 reads a host constraint as that host; others as a dNSName. Permitted
    // takes the narrower reading, excluded the wider one.
    ["a.example.org", "example.org", "maybe"],
    ["a.example.org", ".example.org", "yes"],
    ["example.org", ".example.org", "no"],
    ["badexample.org", ".example.org", "no"],
    ["other.org", "example.org", "no"],
  ];
  for (const [host, constraint, expected] of cases) {
    const c = uriConstraintOf(constraint);
    assertOk(c !== null);
    assertEquals(uriWithin(host, c), expected, `${host} in ${constraint}`);
  }
  for (const bad of ["", "https://example.org", "*.example.org", "example.org."]) {
    assertEquals(uriConstraintOf(bad), null, bad);
  }
});

Deno.test("iPAddress: v4 and v6 ranges by their masks, never across families", () => {
  const v4 = (...octets: number[]) => new Uint8Array(octets);
  const v6 = (text: string) => {
    const [head, tail = ""] = text.split("::");
    const words = (s: string) => (s ? s.split(":").map((w) => parseInt(w, 16)) : []);
    const [h, t] = [words(head!), words(tail)];
    const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
    return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
  };
  const range = (address: Uint8Array, mask: Uint8Array) => {
    const r = ipRangeOf(new Uint8Array([...address, ...mask]));
    assertOk(r !== null);
    return r;
  };
  const ten8 = range(v4(10, 0, 0, 0), v4(255, 0, 0, 0));
  assertEquals(ipWithin(v4(10, 1, 2, 3), ten8), "yes");
  assertEquals(ipWithin(v4(11, 0, 0, 1), ten8), "no");
  assertEquals(ipWithin(v6("::ffff:a00:1"), ten8), "no");
  // The address's bits past the mask do not count.
  assertEquals(ipWithin(v4(10, 9, 9, 9), range(v4(10, 0, 0, 1), v4(255, 0, 0, 0))), "yes");
  const slash25 = range(v4(192, 168, 1, 128), v4(255, 255, 255, 128));
  assertEquals(ipWithin(v4(192, 168, 1, 200), slash25), "yes");
  assertEquals(ipWithin(v4(192, 168, 1, 127), slash25), "no");
  const all4 = range(v4(0, 0, 0, 0), v4(0, 0, 0, 0));
  assertEquals(ipWithin(v4(203, 0, 113, 9), all4), "yes");
  assertEquals(ipWithin(v6("2001:db8::1"), all4), "no");
  const doc = range(v6("2001:db8::"), v6("ffff:ffff::"));
  assertEquals(ipWithin(v6("2001:db8:1::1"), doc), "yes");
  assertEquals(ipWithin(v6("2001:db9::1"), doc), "no");
  assertEquals(ipWithin(v4(32, 1, 13, 184), doc), "no");
  const slash127 = range(v6("fe80::"), v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
  assertEquals(ipWithin(v6("fe80::1"), slash127), "yes");
  assertEquals(ipWithin(v6("fe80::2"), slash127), "no");
  // A mask whose ones are not all first, and lengths of neither family: no range at all.
  assertEquals(ipRangeOf(new Uint8Array([10, 0, 0, 0, 255, 0, 255, 0])), null);
  assertEquals(ipRangeOf(new Uint8Array([10, 0, 0, 0, 0, 255, 255, 255])), null);
  assertEquals(ipRangeOf(new Uint8Array([10, 0, 0, 0, 255])), null);
  assertEquals(ipRangeOf(new Uint8Array(16)), null);
  assertEquals(ipAddressOf(new Uint8Array(5)), null);
  assertEquals(ipAddressOf(new Uint8Array(8)), null);
});

// DER, built by hand for the rest.
const text = new TextEncoder();
function tlv(tag: number, ...parts: (Uint8Array | string)[]): Uint8Array {
  const content = parts.flatMap((p) => [...(typeof p === "string" ? text.encode(p) : p)]);
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return new Uint8Array([tag, ...length, ...content]);
}
const OID_BYTES = {
  O: [0x55, 0x04, 0x0a],
  OU: [0x55, 0x04, 0x0b],
  CN: [0x55, 0x04, 0x03],
  emailAddress: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
} as const;
const STRING = { utf8: 0x0c, printable: 0x13, ia5: 0x16, bmp: 0x1e } as const;
type Attr = [keyof typeof OID_BYTES, string, number?];
const attr = ([type, value, tag = STRING.utf8]: Attr) =>
  tlv(
    0x30,
    tlv(0x06, new Uint8Array(OID_BYTES[type])),
    tag === STRING.bmp
      ? tlv(tag, new Uint8Array([...value].flatMap((c) => [0, c.charCodeAt(0)])))
      : tlv(tag, value),
  );
const rdn = (...attrs: Attr[]) => tlv(0x31, ...attrs.map(attr));
const dnDer = (...rdns: Uint8Array[]) => tlv(0x30, ...rdns);
const dn = (...rdns: Uint8Array[]) => {
  const r = rdnsOf(readRoot(dnDer(...rdns)));
  assertOk(r !== null);
  return r;
};

Deno.test("directoryName: the constraint's RDNs begin the name; the same bytes, or the same text caseless", () => {
  const acme = rdn(["O", "Acme"]);
  const client = rdn(["CN", "client"]);
  assertEquals(dnWithin(dn(acme, client), dn(acme)), "yes");
  assertEquals(dnWithin(dn(acme), dn(acme)), "yes");
  assertEquals(dnWithin(dn(acme, client), dn()), "yes");
  assertEquals(dnWithin(dn(acme), dn(acme, client)), "no");
  assertEquals(dnWithin(dn(client, acme), dn(acme)), "no");
  assertEquals(dnWithin(dn(rdn(["O", "Other"]), client), dn(acme)), "no");
  assertEquals(dnWithin(dn(rdn(["OU", "Acme"]), client), dn(acme)), "no");
  // Another encoding of the same text: only an excluded subtree takes it.
  for (
    const other of [
      rdn(["O", "Acme", STRING.printable]),
      rdn(["O", "ACME"]),
      rdn(["O", "  acme "]),
      rdn(["O", "Acme", STRING.bmp]),
    ]
  ) {
    assertEquals(dnWithin(dn(other, client), dn(acme)), "maybe");
  }
  assertEquals(
    dnWithin(dn(rdn(["O", "Acme  Corp"])), dn(rdn(["O", "acme corp", STRING.printable]))),
    "maybe",
  );
  // Multi-valued RDNs: the same attributes in any order; not fewer, not more.
  const both = rdn(["O", "Acme"], ["OU", "Ops"]);
  const swapped = rdn(["OU", "Ops"], ["O", "Acme"]);
  assertEquals(dnWithin(dn(both), dn(both)), "yes");
  assertEquals(dnWithin(dn(swapped), dn(both)), "maybe");
  assertEquals(dnWithin(dn(both), dn(acme)), "no");
  assertEquals(dnWithin(dn(acme), dn(both)), "no");
  // Values that are not strings compare by their bytes.
  const raw = (value: Uint8Array) =>
    tlv(0x31, tlv(0x30, tlv(0x06, new Uint8Array(OID_BYTES.O)), value));
  assertEquals(dnWithin(dn(raw(tlv(0x04, "x"))), dn(raw(tlv(0x04, "x")))), "yes");
  assertEquals(dnWithin(dn(raw(tlv(0x04, "x"))), dn(raw(tlv(0x04, "X")))), "no");
  // Malformed: no name at all.
  const malformed = [
    tlv(0x31, acme),
    dnDer(tlv(0x31)),
    dnDer(tlv(0x30, attr(["O", "x"]))),
    dnDer(tlv(0x31, tlv(0x30, tlv(0x06, new Uint8Array(OID_BYTES.O))))),
    dnDer(acme).subarray(0, 6),
  ];
  for (const bytes of malformed) {
    let rdns: unknown = "threw";
    try {
      rdns = rdnsOf({
        bytes,
        tag: bytes[0]!,
        start: 2,
        end: Math.min(bytes.length, 2 + bytes[1]!),
      });
    } catch { /* must not */ }
    assertEquals(rdns, null);
  }
});

// GeneralName tags (RFC 5280 §4.2.1.6, IMPLICIT): [1] rfc822Name, [2] dNSName, [4] directoryName...
const GN = {
  otherName: 0xa0,
  email: 0x81,
  dns: 0x82,
  x400: 0xa3,
  dir: 0xa4,
  edi: 0xa5,
  uri: 0x86,
  ip: 0x87,
  rid: 0x88,
} as const;
const subtree = (base: Uint8Array, ...bounds: Uint8Array[]) => tlv(0x30, base, ...bounds);
const nameConstraints = (permitted: Uint8Array[], excluded: Uint8Array[] = []) =>
  tlv(
    0x30,
    ...(permitted.length ? [tlv(0xa0, ...permitted)] : []),
    ...(excluded.length ? [tlv(0xa1, ...excluded)] : []),
  );
const compile = (der: Uint8Array) => {
  const compiled = compileNameConstraints(readRoot(der));
  return typeof compiled === "string" ? compiled : "ok";
};

Deno.test("NameConstraints: unsupported forms, bounds and malformed subtrees refuse", () => {
  const dns = subtree(tlv(GN.dns, "example.com"));
  assertEquals(compile(nameConstraints([dns])), "ok");
  assertEquals(compile(nameConstraints([], [dns])), "ok");
  assertEquals(
    compile(nameConstraints([dns, subtree(tlv(GN.ip, new Uint8Array(8)))], [dns])),
    "ok",
  );
  assertEquals(compile(nameConstraints([subtree(tlv(GN.dir, dnDer(rdn(["O", "Acme"]))))])), "ok");
  const unsupported = [
    tlv(GN.otherName, tlv(0x06, new Uint8Array([0x2b, 6, 1])), tlv(0xa0, tlv(0x0c, "x"))),
    tlv(GN.x400),
    tlv(GN.edi),
    tlv(GN.rid, new Uint8Array([0x2a, 3])),
  ];
  for (const base of unsupported) {
    assertEquals(compile(nameConstraints([dns, subtree(base)])), "UNSUPPORTED_CONSTRAINT_TYPE");
    assertEquals(compile(nameConstraints([], [subtree(base)])), "UNSUPPORTED_CONSTRAINT_TYPE");
  }
  // RFC 5280: minimum is 0 (and so absent in DER), maximum absent.
  assertEquals(
    compile(nameConstraints([subtree(tlv(GN.dns, "a.b"), tlv(0x80, "\x00"))])),
    "SUBTREE_MINMAX",
  );
  assertEquals(
    compile(nameConstraints([subtree(tlv(GN.dns, "a.b"), tlv(0x81, "\x02"))])),
    "SUBTREE_MINMAX",
  );
  const syntax = [
    tlv(0x30),
    tlv(0x30, tlv(0xa0)),
    tlv(0x30, tlv(0xa1, dns), tlv(0xa0, dns)),
    tlv(0x30, tlv(0xa0, dns), tlv(0xa2, dns)),
    nameConstraints([subtree(tlv(GN.dns, "a.b"), tlv(GN.dns, "c.d"))]),
    nameConstraints([tlv(0x30)]),
    nameConstraints([subtree(tlv(GN.dns | 0x20, tlv(0x16, "a.b")))]),
    nameConstraints([subtree(tlv(0x89, "x"))]),
    nameConstraints([subtree(tlv(GN.dns, "*.example.com"))]),
    nameConstraints([subtree(tlv(GN.dns, "example.com."))]),
    nameConstraints([subtree(tlv(GN.dns, "bücher.example"))]),
    nameConstraints([subtree(tlv(GN.email, ""))]),
    nameConstraints([subtree(tlv(GN.uri, "https://example.com/"))]),
    nameConstraints([subtree(tlv(GN.ip, new Uint8Array([10, 0, 0, 0, 255, 0, 255, 0])))]),
    nameConstraints([subtree(tlv(GN.ip, new Uint8Array(5)))]),
    nameConstraints([subtree(tlv(GN.dir, tlv(0x31)))]),
    nameConstraints([subtree(tlv(GN.dir, dnDer(rdn(["O", "a"])), dnDer()))]),
  ];
  for (const [i, der] of syntax.entries()) {
    assertEquals(compile(der), "UNSUPPORTED_CONSTRAINT_SYNTAX", `case ${i}`);
  }
});

/** A certificate's profile, as far as name constraints read it. */
function profile(o: { subject?: Uint8Array; san?: Uint8Array[]; nc?: Uint8Array }): CertProfile {
  return {
    version: 3,
    ca: o.nc !== undefined,
    pathLen: null,
    keyUsage: null,
    extKeyUsage: null,
    unhandledCritical: null,
    subject: readRoot(o.subject ?? dnDer(rdn(["CN", "client"]))),
    subjectAltName: o.san ? readRoot(tlv(0x30, ...o.san)) : null,
    nameConstraints: o.nc ? readRoot(o.nc) : null,
  };
}

Deno.test("name constraints on a path: every CA's hold below it; the subject's emailAddress too", () => {
  const permitDns = nameConstraints([subtree(tlv(GN.dns, "example.com"))]);
  const excludeBad = nameConstraints([], [subtree(tlv(GN.dns, "bad.example.com"))]);
  const leaf = (...san: Uint8Array[]) => profile({ san });
  const anchor = (nc: Uint8Array) => profile({ nc });
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.dns, "a.example.com")), anchor(permitDns)]),
    null,
  );
  assertEquals(
    pathNameConstraintsError([
      leaf(tlv(GN.dns, "a.example.com"), tlv(GN.dns, "x.org")),
      anchor(permitDns),
    ]),
    "PERMITTED_VIOLATION",
  );
  // No name of the constrained form: nothing to hold.
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.ip, new Uint8Array(4))), anchor(permitDns)]),
    null,
  );
  assertEquals(pathNameConstraintsError([leaf(), anchor(permitDns)]), null);
  // The intermediate's constraints and the anchor's, on the leaf and on the intermediate.
  const intermediate = (nc: Uint8Array, ...san: Uint8Array[]) => profile({ nc, san });
  const path = (name: string, interSan: Uint8Array[] = []) =>
    pathNameConstraintsError([
      leaf(tlv(GN.dns, name)),
      intermediate(excludeBad, ...interSan),
      anchor(permitDns),
    ]);
  assertEquals(path("a.example.com"), null);
  assertEquals(path("x.bad.example.com"), "EXCLUDED_VIOLATION");
  assertEquals(path("a.other.org"), "PERMITTED_VIOLATION");
  assertEquals(path("a.example.com", [tlv(GN.dns, "ca.other.org")]), "PERMITTED_VIOLATION");
  // The leaf's own NameConstraints bind nothing (rustls/webpki ignores them as well).
  assertEquals(
    pathNameConstraintsError([
      profile({ nc: excludeBad, san: [tlv(GN.dns, "bad.example.com")] }),
      anchor(permitDns),
    ]),
    null,
  );
  // The subject's emailAddress, against rfc822Name constraints (OpenSSL does, webpki does not).
  const permitMail = nameConstraints([subtree(tlv(GN.email, "example.com"))]);
  const withEmail = (address: string) =>
    profile({ subject: dnDer(rdn(["CN", "c"]), rdn(["emailAddress", address, STRING.ia5])) });
  assertEquals(pathNameConstraintsError([withEmail("u@example.com"), anchor(permitMail)]), null);
  assertEquals(
    pathNameConstraintsError([withEmail("u@other.com"), anchor(permitMail)]),
    "PERMITTED_VIOLATION",
  );
  assertEquals(
    pathNameConstraintsError([withEmail("no-at"), anchor(permitMail)]),
    "UNSUPPORTED_NAME_SYNTAX",
  );
  // The subject CN is no dNSName.
  const cn = profile({ subject: dnDer(rdn(["CN", "host.other.org"])) });
  assertEquals(pathNameConstraintsError([cn, anchor(permitDns)]), null);
  // A name of a constrained form that is not of its syntax, and a malformed SubjectAltName.
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.dns, "a..example.com")), anchor(excludeBad)]),
    "UNSUPPORTED_NAME_SYNTAX",
  );
  assertEquals(
    pathNameConstraintsError([leaf(tlv(0x89, "?")), anchor(excludeBad)]),
    "UNSUPPORTED_NAME_SYNTAX",
  );
  const permitIp = nameConstraints([
    subtree(tlv(GN.ip, new Uint8Array([10, 0, 0, 0, 255, 0, 0, 0]))),
  ]);
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.ip, new Uint8Array(5))), anchor(permitIp)]),
    "UNSUPPORTED_NAME_SYNTAX",
  );
});

Deno.test("name constraints: what Deno 2.9.6's TLS layer refuses is refused, whatever the evaluation says", () => {
  const anchor = (nc: Uint8Array) => profile({ nc });
  const permitMail = nameConstraints([subtree(tlv(GN.email, "example.com"))]);
  const permitUri = nameConstraints([subtree(tlv(GN.uri, "example.org"))]);
  const permitDir = nameConstraints([subtree(tlv(GN.dir, dnDer(rdn(["O", "Acme"]))))]);
  const excludeDir = nameConstraints([], [subtree(tlv(GN.dir, dnDer(rdn(["O", "Evil"]))))]);
  const leaf = (...san: Uint8Array[]) =>
    profile({ subject: dnDer(rdn(["O", "Acme"]), rdn(["CN", "c"])), san });
  // Within the subtree, and still refused: webpki 0.103.13 refuses these names.
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.email, "u@example.com")), anchor(permitMail)]),
    "UNSUPPORTED_CONSTRAINT_TYPE",
  );
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.uri, "spiffe://example.org/a")), anchor(permitUri)]),
    "UNSUPPORTED_CONSTRAINT_TYPE",
  );
  assertEquals(
    pathNameConstraintsError([leaf(), anchor(permitDir)]),
    "UNSUPPORTED_CONSTRAINT_TYPE",
  );
  assertEquals(
    pathNameConstraintsError([leaf(), anchor(excludeDir)]),
    "UNSUPPORTED_CONSTRAINT_TYPE",
  );
  // Outside it: the violation is named.
  assertEquals(
    pathNameConstraintsError([leaf(tlv(GN.email, "u@other.com")), anchor(permitMail)]),
    "PERMITTED_VIOLATION",
  );
  assertEquals(
    pathNameConstraintsError([profile({ subject: dnDer(rdn(["O", "Evil"])) }), anchor(excludeDir)]),
    "EXCLUDED_VIOLATION",
  );
  // A constrained form the certificate has no name of in its SubjectAltName: evaluated only.
  assertEquals(pathNameConstraintsError([leaf(tlv(GN.dns, "a.b")), anchor(permitMail)]), null);
  assertEquals(pathNameConstraintsError([leaf(tlv(GN.dns, "a.b")), anchor(permitUri)]), null);
});

Deno.test("name constraints: malformed DER, truncated or altered anywhere, is an answer, never a throw", () => {
  const nc = nameConstraints(
    [
      subtree(tlv(GN.dns, "example.com")),
      subtree(tlv(GN.ip, new Uint8Array([10, 0, 0, 0, 255, 0, 0, 0]))),
      subtree(tlv(GN.email, ".example.com")),
      subtree(tlv(GN.dir, dnDer(rdn(["O", "Acme"])))),
    ],
    [subtree(tlv(GN.dns, "bad.example.com"))],
  );
  const san = tlv(
    0x30,
    tlv(GN.dns, "a.example.com"),
    tlv(GN.ip, new Uint8Array([10, 1, 2, 3])),
    tlv(GN.email, "u@a.example.com"),
    tlv(GN.dir, dnDer(rdn(["O", "Acme"]), rdn(["CN", "c"]))),
  );
  const subject = dnDer(rdn(["O", "Acme"]), rdn(["emailAddress", "u@a.example.com", STRING.ia5]));
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const altered = (bytes: Uint8Array) => {
    const copy = bytes.slice();
    for (let k = 0, n = 1 + random(3); k < n; k++) copy[random(copy.length)] = random(256);
    return copy;
  };
  /** As the reader of a certificate would have cut it: the element at 0, within `bytes`. */
  const element = (bytes: Uint8Array) => {
    try {
      return readRoot(bytes);
    } catch {
      return readRoot(tlv(0x30));
    }
  };
  const answers = new Set<string | null>();
  for (let i = 0; i < 3000; i++) {
    const which = random(3);
    const cut = (b: Uint8Array) => (random(4) === 0 ? b.subarray(0, random(b.length)) : b);
    const ncBytes = which === 0 ? cut(altered(nc)) : nc;
    const sanBytes = which === 1 ? cut(altered(san)) : san;
    const subjectBytes = which === 2 ? cut(altered(subject)) : subject;
    const leaf: CertProfile = {
      ...profile({}),
      subject: element(subjectBytes),
      subjectAltName: element(sanBytes),
    };
    answers.add(
      pathNameConstraintsError([leaf, { ...profile({ nc }), nameConstraints: element(ncBytes) }]),
    );
  }
  // Refusals of every kind came back as answers.
  assertOk(answers.has("UNSUPPORTED_CONSTRAINT_SYNTAX"), [...answers].join());
  assertOk(answers.has("UNSUPPORTED_NAME_SYNTAX"), [...answers].join());
});
