/** Shared setup of the hostile suite: one recording upstream behind a gateway, both stopped after. */
import { startUpstream, type TestHandler, type TestServer } from "../helpers/upstream.ts";
import {
  baseConfig,
  startGateway,
  type StartOptions,
  type TestGateway,
} from "../helpers/gateway.ts";

export interface Rig {
  g: TestGateway;
  up: TestServer;
}

/** `body(upstreamUrl)` is the config below the listeners (upstreams, routes, security). */
export async function withRig(
  body: (upstreamUrl: string) => string,
  fn: (rig: Rig) => Promise<void>,
  opts: StartOptions & { handler?: TestHandler; listeners?: string } = {},
): Promise<void> {
  const up = startUpstream(opts.handler);
  try {
    const text = opts.listeners
      ? `${opts.listeners}\nadmin: { host: 127.0.0.1, port: 0 }\nserver: { drain_timeout_s: 5 }\n${
        body(up.url)
      }`
      : baseConfig(body(up.url));
    const g = await startGateway(text, opts);
    try {
      await fn({ g, up });
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
  }
}

/** Paths the upstream received, in order. */
export function receivedPaths(up: TestServer): string[] {
  return up.received.map((r) => r.url);
}
