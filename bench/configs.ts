/**
 * The gateway configurations `deno task bench` loads, each a separate gateway
 * process on its own port, in front of the anchors' upstream (nginx on 9001).
 */
import { join } from "node:path";

export interface BenchTarget {
  name: string;
  url: string;
  /** One `Name: value` header for wrk. */
  header?: string;
  headers?: Record<string, string>;
  /** Process to sample RSS from. */
  pid?: () => number | undefined;
}

type Spawn = (cmd: string, args: string[], env?: Record<string, string>) => Deno.ChildProcess;

const UPSTREAM = "http://127.0.0.1:9001";

interface GatewayConfig {
  name: string;
  /** Routes and sections after listeners/admin/upstreams. */
  body: string;
  path?: string;
  header?: string;
  args?: string[];
}

function configs(): GatewayConfig[] {
  return [
    {
      name: "gateway routing-only",
      body: `
routes:
  - { name: users, match: { path: /api/users }, strip_prefix: true, upstream: users }
`,
    },
  ];
}

export async function gatewayTargets(
  root: string,
  spawn: Spawn,
  cleanups: (() => Promise<void>)[],
): Promise<BenchTarget[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-bench-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  const out: BenchTarget[] = [];
  for (const [i, c] of configs().entries()) {
    const port = 9500 + i;
    const file = join(dir, `bench-${i}.yaml`);
    await Deno.writeTextFile(
      file,
      `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
admin: { host: 127.0.0.1, port: ${9600 + i} }
observe: { access_log: { enabled: false } }
upstreams:
  users: { targets: [ { url: "${UPSTREAM}" } ] }
${c.body}`,
    );
    const child = spawn(Deno.execPath(), [
      "run",
      "-A",
      join(root, "main.ts"),
      "run",
      "--config",
      file,
      "--log-level",
      "warn",
      ...(c.args ?? []),
    ]);
    out.push({
      name: c.name,
      url: `http://127.0.0.1:${port}${c.path ?? "/api/users/42"}`,
      ...(c.header ? { header: c.header } : {}),
      pid: () => child.pid,
    });
  }
  return out;
}
