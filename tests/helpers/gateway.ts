/**
 * Starts the gateway in-process on a config written to a temp folder, with
 * every listener on a free loopback port unless the test pins one.
 */
import { Gateway, type GatewayOptions } from "../../lib/server/gateway.ts";
import { type Logger, silentLogger } from "../../lib/observe/logger.ts";
import type { Clock } from "../../lib/core/clock.ts";

export interface TestGateway {
  readonly gw: Gateway;
  /** Base URL of a public listener (the first one by default). */
  url(listener?: string): string;
  /** Base URL of the admin listener. */
  readonly admin: string;
  /** Path of the config file; rewrite it and call `gw.reload()` to test reloads. */
  readonly file: string;
  readonly dir: string;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  clock?: Clock;
  logger?: Logger;
  /** Receives the access log's `stdout` output; discarded by default. */
  stdout?: (text: string) => void;
  /** Extra files written beside the config (relative name → content). */
  files?: Record<string, string | Uint8Array>;
}

/**
 * `yaml` is the config text. Listeners without a port, and the admin listener,
 * get port 0 (a free port) when the text does not set one.
 */
export async function startGateway(yaml: string, opts: StartOptions = {}): Promise<TestGateway> {
  const dir = await Deno.makeTempDir({ prefix: "gw-test-" });
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(file, yaml);
  for (const [name, content] of Object.entries(opts.files ?? {})) {
    const p = `${dir}/${name}`;
    if (typeof content === "string") await Deno.writeTextFile(p, content);
    else await Deno.writeFile(p, content);
  }
  const options: GatewayOptions = {
    configFile: file,
    env: (name) => (opts.env ?? {})[name],
    logger: opts.logger ?? silentLogger,
    stdout: {
      write: (p) => {
        opts.stdout?.(new TextDecoder().decode(p));
        return Promise.resolve(p.length);
      },
    },
    ...(opts.clock ? { clock: opts.clock } : {}),
  };
  let gw: Gateway;
  try {
    gw = await Gateway.start(options);
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const addrs = gw.addresses();
  const first = Object.keys(addrs).find((k) => k !== "admin");
  return {
    gw,
    url: (name = first!) => {
      const a = gw.addresses()[name];
      if (!a) throw new Error(`no listener named ${name}`);
      return a;
    },
    admin: addrs.admin ?? "",
    file,
    dir,
    async close() {
      await gw.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A minimal config: one public listener and the admin listener on free ports. */
export function baseConfig(body: string): string {
  return `listeners:
  - { name: public, host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 5 }
${body}`;
}

/** `baseConfig` with one upstream, `a` at `url`, and one route, `all`, sending it every path. */
export function proxyAllConfig(url: string, extra = ""): string {
  return baseConfig(`${extra}
upstreams:
  a: { targets: [ { url: "${url}" } ] }
routes:
  - { name: all, match: { path: / }, upstream: a }
`);
}
