import { assertEquals } from "../helpers/assert.ts";
import { CidrSet, formatIp, parseCidr, parseIp } from "../../lib/security/cidr.ts";
import { clientIpOf } from "../../lib/security/client_ip.ts";
import { forwardedFor } from "../../lib/security/forwarded.ts";
import { IpRules } from "../../lib/security/ip_rules.ts";

const trusted = new CidrSet(["10.0.0.0/8", "fd00::/8"]);

Deno.test("clientIpOf() believes X-Forwarded-For only from trusted peers", () => {
  const cases: [string, string | null, string, boolean][] = [
    // peer, X-Forwarded-For, client, peer trusted
    ["203.0.113.9", "1.2.3.4", "203.0.113.9", false],
    ["10.0.0.1", null, "10.0.0.1", true],
    ["10.0.0.1", "1.2.3.4", "1.2.3.4", true],
    ["10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4", true],
    ["10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", "1.2.3.4", true],
    ["10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3", true],
    ["10.0.0.1", "garbage, 10.0.0.2", "10.0.0.2", true],
    ["10.0.0.1", "1.2.3.4:5678", "1.2.3.4", true],
    ["10.0.0.1", "[2001:db8::1]:443", "2001:db8::1", true],
    ["10.0.0.1", "::ffff:1.2.3.4", "1.2.3.4", true],
    ["::ffff:10.0.0.1", "1.2.3.4", "1.2.3.4", true],
    ["fd00::1", "2001:db8::7", "2001:db8::7", true],
    ["10.0.0.1", "1.2.3.4, unknown", "10.0.0.1", true],
  ];
  for (const [peer, xff, ip, peerTrusted] of cases) {
    assertEquals(clientIpOf(peer, xff, trusted), { ip, peerTrusted }, `${peer} ${xff}`);
  }
});

Deno.test("clientIpOf() reads the for= nodes of Forwarded when configured", () => {
  const cases: [string, string, string][] = [
    ["203.0.113.9", "for=1.2.3.4", "203.0.113.9"],
    ["10.0.0.1", "for=1.2.3.4", "1.2.3.4"],
    ["10.0.0.1", 'for=6.6.6.6, for="1.2.3.4:80";proto=https, for=10.0.0.2', "1.2.3.4"],
    ["10.0.0.1", 'for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"],
    ["10.0.0.1", "For=1.2.3.4;by=10.0.0.1", "1.2.3.4"],
    ["10.0.0.1", "for=_hidden, for=10.0.0.2", "10.0.0.2"],
    ["10.0.0.1", "for=1.2.3.4;for=5.6.7.8", "10.0.0.1"],
    ["10.0.0.1", "proto=https", "10.0.0.1"],
  ];
  for (const [peer, fwd, ip] of cases) {
    assertEquals(clientIpOf(peer, fwd, trusted, "forwarded").ip, ip, fwd);
  }
});

Deno.test("forwardedFor() parses quoted strings and separators inside quotes", () => {
  assertEquals(forwardedFor('for="a,b";proto=http, for=c'), ["a,b", "c"]);
  assertEquals(forwardedFor('for="x\\"y"'), ['x"y']);
  assertEquals(forwardedFor("by=1.1.1.1"), [null]);
  assertEquals(forwardedFor('for="unterminated'), [null]);
  assertEquals(forwardedFor("for=1.2.3.4,"), ["1.2.3.4", null]);
  assertEquals(forwardedFor("junk, for=1.2.3.4"), [null, "1.2.3.4"]);
});

Deno.test("CIDR blocks match IPv4, IPv6 and IPv4-mapped addresses", () => {
  const set = new CidrSet(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108"]);
  const cases: [string, boolean][] = [
    ["10.1.2.3", true],
    ["11.0.0.1", false],
    ["::ffff:10.9.9.9", true],
    ["192.168.1.7", true],
    ["192.168.1.8", false],
    ["2001:db8:1::5", true],
    ["2001:db9::1", false],
    ["172.16.5.5", true],
    ["[2001:db8::1]", true],
    ["fe80::1%eth0", false],
    ["not-an-ip", false],
  ];
  for (const [ip, want] of cases) assertEquals(set.containsText(ip), want, ip);
  assertEquals(parseCidr("10.0.0.0/33"), null);
  assertEquals(parseCidr("2001:db8::/129"), null);
  assertEquals(parseCidr("010.0.0.1"), null);
  assertEquals(formatIp(parseIp("2001:db8:0:0:0:0:0:1")!), "2001:db8::1");
});

Deno.test("IpRules: deny wins, an allow list refuses everything else and unusable addresses", () => {
  const rules = new IpRules({ allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.6.6.0/24"] });
  assertEquals(rules.permits(parseIp("10.1.1.1")), true);
  assertEquals(rules.permits(parseIp("10.6.6.6")), false);
  assertEquals(rules.permits(parseIp("::ffff:10.6.6.6")), false);
  assertEquals(rules.permits(parseIp("8.8.8.8")), false);
  assertEquals(rules.permits(parseIp("2001:db8::9")), true);
  assertEquals(rules.permits(null), false);
  const denyOnly = new IpRules({ deny: ["::1/128", "127.0.0.0/8"] });
  assertEquals(denyOnly.permits(parseIp("::1")), false);
  assertEquals(denyOnly.permits(parseIp("127.0.0.9")), false);
  assertEquals(denyOnly.permits(parseIp("8.8.8.8")), true);
  assertEquals(denyOnly.permits(null), true);
});
