/**
 * Between wildcard hosts the longer name wins (`*.eu.example.com` over
 * `*.example.com`), measured as requests are compared: without the port or
 * trailing dot a configured host may carry, which routing ignores.
 */
import { assertEquals } from "../helpers/assert.ts";
import { rawGet } from "../helpers/raw.ts";
import { startRawUpstream } from "../helpers/raw_upstream.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";

Deno.test("a port or trailing dot in a configured host does not make it more specific", async () => {
  const wide = startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"));
  const eu = startRawUpstream((x) => x.write("HTTP/1.1 204 No Content\r\n\r\n"));
  const g = await startGateway(baseConfig(`
upstreams:
  wide: { targets: [ { url: "${wide.url}" } ] }
  eu: { targets: [ { url: "${eu.url}" } ] }
routes:
  - { name: wide, match: { path: /h, host: ["*.example.com:8443", "*.example.org."] }, upstream: wide }
  - { name: eu, match: { path: /h, host: ["*.eu.example.com", "*.eu.example.org"] }, upstream: eu }
`));
  try {
    const served = async (host: string) => {
      const before = [wide.paths.length, eu.paths.length];
      const res = await rawGet(g.url(), "/h?x=1", host);
      assertEquals(res.status, 204, `${host}: ${res.raw}`);
      return wide.paths.length > before[0]! ? `wide ${wide.paths.at(-1)}` : `eu ${eu.paths.at(-1)}`;
    };
    assertEquals(await served("a.eu.example.com:8443"), "eu /h?x=1");
    assertEquals(await served("a.eu.example.org"), "eu /h?x=1");
    assertEquals(await served("a.us.example.com"), "wide /h?x=1");
    assertEquals(await served("a.us.example.org."), "wide /h?x=1");
  } finally {
    await g.close();
    wide.close();
    eu.close();
  }
});
