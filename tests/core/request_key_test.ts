/** `ip/64`: the network an IPv6 client's address is in, whatever its spelling; IPv4 whole. */
import { assertEquals } from "../helpers/assert.ts";
import { clientNetwork } from "../../lib/core/request_key.ts";

Deno.test("request keys: ip/64 is an IPv6 address's /64 in canonical form, an IPv4 address whole", () => {
  const cases: [string, string][] = [
    ["192.0.2.7", "192.0.2.7"],
    ["::ffff:192.0.2.7", "192.0.2.7"],
    ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8::/64"],
    ["::1", "::/64"],
    ["fe80::1%eth0", "fe80::/64"],
    // Not an address (the client IP is always one; kept rather than thrown away).
    ["unknown:value", "unknown:value"],
  ];
  for (const [ip, network] of cases) assertEquals(clientNetwork(ip), network, ip);
});
