/**
 * One gateway with a listener of each kind a client connection can meet: the
 * gateway's own HTTP/1.1 server (`plain`), the node:https server of TLS 1.3
 * and mTLS listeners (`tls13`), and the PROXY protocol front (`proxied`, which
 * the connection greets with a PROXY header as a balancer would).
 */
import { startGateway, type TestGateway } from "./gateway.ts";
import { selfSignedCert } from "./tls.ts";
import { writeAllTo } from "../../lib/proxy/http1/socket_io.ts";

export type ListenerKind = "plain" | "tls13" | "proxied";

export interface ListenerKinds {
  g: TestGateway;
  /** By kind asked for: opens a raw client connection to that listener. */
  connect: Record<string, () => Promise<Deno.Conn>>;
}

/**
 * The gateway routes every path to `upstream`; `setting` (YAML flow-map
 * entries, such as `max_connections: 2`) goes on each listener. Its TLS files
 * are written to `dir`.
 */
export async function gatewayOfEachKind(
  dir: string,
  upstream: string,
  kinds: readonly ListenerKind[],
  setting = "",
): Promise<ListenerKinds> {
  const { cert, key } = await selfSignedCert(dir);
  const caCerts = [await Deno.readTextFile(cert)];
  const extra = setting ? `, ${setting}` : "";
  const listeners: Record<ListenerKind, string> = {
    plain: `{ name: plain, host: 127.0.0.1, port: 0${extra} }`,
    tls13:
      `{ name: tls13, host: 127.0.0.1, port: 0${extra}, tls: { cert: ${cert}, key: ${key}, min_version: "1.3" } }`,
    proxied: `{ name: proxied, host: 127.0.0.1, port: 0${extra}, proxy_protocol: true }`,
  };
  const g = await startGateway(`listeners:
${kinds.map((k) => `  - ${listeners[k]}`).join("\n")}
admin: { host: 127.0.0.1, port: 0 }
security: { trusted_proxies: [127.0.0.1/32] }
server: { drain_timeout_s: 2, config_watch: { enabled: false } }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`);
  const port = (name: string) => Number(new URL(g.url(name)).port);
  const openers: Record<ListenerKind, () => Promise<Deno.Conn>> = {
    plain: () => Deno.connect({ hostname: "127.0.0.1", port: port("plain") }),
    tls13: () => Deno.connectTls({ hostname: "localhost", port: port("tls13"), caCerts }),
    proxied: async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: port("proxied") });
      await writeAllTo(c, new TextEncoder().encode("PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n"));
      return c;
    },
  };
  return { g, connect: Object.fromEntries(kinds.map((k) => [k, openers[k]])) };
}
