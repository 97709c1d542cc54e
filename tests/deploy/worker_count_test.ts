/** workerCount(): `--workers` > `server.workers` > one per core, and what cannot be shared. */
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { DEFAULT_CONFIG, parseArgs, UsageError } from "../../lib/cli/args.ts";
import { parseConfig } from "../../lib/config/load.ts";
import type { GatewayConfig } from "../../lib/config/schema.ts";
import { workerCount, type WorkersFlag } from "../../lib/cluster/worker_count.ts";
import { ClusterStartError } from "../../lib/cluster/worker_handle.ts";

async function config(port: number, serverWorkers?: number): Promise<GatewayConfig> {
  const server = serverWorkers === undefined ? "" : `server: { workers: ${serverWorkers} }\n`;
  return (await parseConfig(
    `listeners: [ { name: public, host: 127.0.0.1, port: ${port} } ]
${server}upstreams: { a: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes: [ { name: r, match: { path: / }, upstream: a } ]
`,
    "gateway.yaml",
  )).config;
}

const FALLBACK = 'one per core would be 4, but listener "public" has port 0, which would give ' +
  "each worker a different random port; give it a fixed port to use every core";

const CASES: {
  name: string;
  flag: WorkersFlag;
  port: number;
  server?: number;
  cores: number;
  expect: { count: number; why: string; fellBack: boolean };
}[] = [
  {
    name: "no flag, no server.workers: one per core",
    flag: null,
    port: 8080,
    cores: 4,
    expect: { count: 4, why: "one per core", fellBack: false },
  },
  {
    name: "one core: one isolate",
    flag: null,
    port: 8080,
    cores: 1,
    expect: { count: 1, why: "one per core", fellBack: false },
  },
  {
    name: "server.workers beats the default",
    flag: null,
    port: 8080,
    server: 3,
    cores: 4,
    expect: { count: 3, why: "server.workers: 3", fellBack: false },
  },
  {
    name: "--workers beats server.workers",
    flag: 1,
    port: 8080,
    server: 3,
    cores: 4,
    expect: { count: 1, why: "--workers 1", fellBack: false },
  },
  {
    name: "--workers auto beats server.workers with one per core",
    flag: "auto",
    port: 8080,
    server: 3,
    cores: 4,
    expect: { count: 4, why: "one per core, --workers auto", fellBack: false },
  },
  {
    name: "port 0 with the default: one isolate, and why",
    flag: null,
    port: 0,
    cores: 4,
    expect: { count: 1, why: FALLBACK, fellBack: true },
  },
  {
    name: "port 0 on one core: nothing to fall back from",
    flag: null,
    port: 0,
    cores: 1,
    expect: { count: 1, why: "one per core", fellBack: false },
  },
  {
    name: "port 0 with --workers 1",
    flag: 1,
    port: 0,
    cores: 4,
    expect: { count: 1, why: "--workers 1", fellBack: false },
  },
  {
    name: "port 0 with server.workers: 1",
    flag: null,
    port: 0,
    server: 1,
    cores: 4,
    expect: { count: 1, why: "server.workers: 1", fellBack: false },
  },
];

for (const c of CASES) {
  Deno.test(`workerCount(): ${c.name}`, async () => {
    assertEquals(workerCount(c.flag, await config(c.port, c.server), c.cores), c.expect);
  });
}

Deno.test("workerCount(): an explicit count above 1 with port 0 is refused, naming its source", async () => {
  const errors = (flag: WorkersFlag, cfg: GatewayConfig): string[] => {
    try {
      workerCount(flag, cfg, 4);
    } catch (e) {
      if (e instanceof ClusterStartError) return e.errors;
      throw e;
    }
    throw new Error("not refused");
  };
  assertEquals(errors(2, await config(0)), [
    '--workers 2 needs fixed listener ports: listener "public" has port 0, which would give ' +
    "each worker a different random port",
  ]);
  assertEquals(errors(null, await config(0, 2)), [
    'server.workers: 2 needs fixed listener ports: listener "public" has port 0, which would ' +
    "give each worker a different random port",
  ]);
});

Deno.test("parseArgs(): --workers takes a count or auto, and nothing else", () => {
  assertEquals(parseArgs([]).workers, null);
  assertEquals(parseArgs(["--workers", "3"]).workers, 3);
  assertEquals(parseArgs(["--workers=auto"]).workers, "auto");
  assertEquals(parseArgs(["validate", "--workers", "1"]).workers, 1);
  for (const bad of ["0", "-1", "1.5", "many"]) {
    assertThrows(
      () => parseArgs(["--workers", bad]),
      new UsageError(`--workers expects a whole number >= 1 or "auto", got ${bad}`),
    );
  }
});

Deno.test("parseArgs(): GATEWAY_CONFIG names the file when set and not empty", () => {
  const before = Deno.env.get("GATEWAY_CONFIG");
  try {
    Deno.env.set("GATEWAY_CONFIG", "/etc/gateway/gateway.yaml");
    assertEquals(parseArgs([]).config, "/etc/gateway/gateway.yaml");
    assertEquals(parseArgs(["--config", "other.yaml"]).config, "other.yaml");
    // Until 2026-12-07 an empty value was taken as the file name "".
    Deno.env.set("GATEWAY_CONFIG", "");
    assertEquals(parseArgs([]).config, DEFAULT_CONFIG);
  } finally {
    if (before === undefined) Deno.env.delete("GATEWAY_CONFIG");
    else Deno.env.set("GATEWAY_CONFIG", before);
  }
});
