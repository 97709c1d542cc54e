/**
 * A `--workers 2` cluster in the test's process, with real worker isolates on
 * real ports, for tests that reach into the main thread (holding back messages
 * to a worker): its config written by `config`, its log kept, everything it
 * started stopped at the end.
 */
import { freePorts } from "../helpers/ports.ts";
import { startUpstream } from "../helpers/upstream.ts";
import { Cluster, type ClusterOptions } from "../../lib/cluster/cluster.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";

export interface InProcessCluster {
  cluster: Cluster;
  admin: string;
  /** The public listener's origin. */
  public: string;
  /** Writes the config file again with other `routes` (the caller reloads). */
  rewrite: (routes: string) => Promise<void>;
  logs: () => Record<string, unknown>[];
}

/** `config(port, admin, upstreamUrl, routes)`: the file's text. */
export type ClusterConfig = (
  port: number,
  admin: number,
  upstream: string,
  routes: string,
) => string;

export async function withInProcessCluster(
  config: ClusterConfig,
  routes: string,
  options: Partial<Omit<ClusterOptions, "configFile" | "workers" | "logLevel" | "logger">>,
  fn: (c: InProcessCluster) => Promise<void>,
): Promise<void> {
  const up = startUpstream();
  const dir = await Deno.makeTempDir({ prefix: "gw-cluster-" });
  const file = `${dir}/gateway.yaml`;
  const [port, admin] = freePorts(2) as [number, number];
  const rewrite = (routes: string) => Deno.writeTextFile(file, config(port, admin, up.url, routes));
  await rewrite(routes);
  const lines: string[] = [];
  const cluster = await Cluster.start({
    configFile: file,
    workers: 2,
    logLevel: "info",
    logger: new JsonLogger("info", (l) => lines.push(l)),
    ...options,
  });
  try {
    await fn({
      cluster,
      admin: `http://127.0.0.1:${admin}`,
      public: `http://127.0.0.1:${port}`,
      rewrite,
      logs: () => lines.map((l) => JSON.parse(l)),
    });
  } finally {
    await cluster.shutdown();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}
