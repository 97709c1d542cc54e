/**
 * `deno task start`: small demo services on loopback, and the gateway on
 * config/gateway.yaml in front of them, started as `gateway run` starts it (one
 * worker isolate per core unless `server.workers` says otherwise), with curl
 * lines to try. Ctrl-C drains and stops everything.
 */
import { JsonLogger } from "../lib/observe/logger.ts";
import { ConfigError, formatIssue } from "../lib/config/issues.ts";
import { ClusterStartError } from "../lib/cluster/worker_handle.ts";
import { serve, type Server } from "../lib/cli/serve.ts";

const CONFIG = Deno.env.get("GATEWAY_CONFIG") ?? "config/gateway.yaml";

type Demo = { name: string; port: number; handler: (req: Request) => Response };

const users = [{ id: 1, name: "Ada" }, { id: 2, name: "Grace" }];

const demos: Demo[] = [
  {
    name: "users",
    port: 3001,
    handler: (req) => {
      const u = new URL(req.url);
      const v2 = u.pathname.startsWith("/v2");
      const id = Number(u.pathname.replace(/^\/v2/, "").split("/")[1]);
      const shape = (x: { id: number; name: string }) =>
        v2 ? { id: x.id, display_name: x.name, version: 2 } : x;
      if (id) {
        const found = users.find((x) => x.id === id);
        return found ? Response.json(shape(found)) : Response.json({ error: "no such user" }, {
          status: 404,
        });
      }
      return Response.json({ users: users.map(shape), seen_path: u.pathname });
    },
  },
  {
    name: "products",
    port: 3002,
    handler: () => Response.json({ products: ["kettle", "teapot"], served_by: "stable" }),
  },
  {
    name: "products-canary",
    port: 3003,
    handler: () => Response.json({ products: ["kettle", "teapot", "mug"], served_by: "canary" }),
  },
  {
    name: "events",
    port: 3004,
    handler: () => {
      let n = 0;
      let timer: ReturnType<typeof setInterval>;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          timer = setInterval(() => {
            c.enqueue(new TextEncoder().encode(`data: {"tick":${++n}}\n\n`));
            if (n === 5) {
              clearInterval(timer);
              c.close();
            }
          }, 500);
        },
        cancel: () => clearInterval(timer),
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  },
];

const servers = demos.map((d) =>
  Deno.serve({ hostname: "127.0.0.1", port: d.port, onListen: () => {} }, d.handler)
);

let gw: Server;
let workers: string;
try {
  const started = await serve({
    configFile: CONFIG,
    workers: null,
    logLevel: "warn",
    logger: new JsonLogger("warn"),
  });
  gw = started.server;
  workers = `${started.workers.count} worker(s): ${started.workers.why}`;
} catch (e) {
  if (e instanceof ConfigError) e.issues.forEach((i) => console.error(formatIssue(i)));
  else if (e instanceof ClusterStartError) e.errors.forEach((line) => console.error(line));
  else console.error(e);
  await Promise.all(servers.map((s) => s.shutdown()));
  Deno.exit(1);
}

const base = gw.addresses().public ?? Object.values(gw.addresses())[0];
const admin = gw.addresses().admin;
console.log(
  `Gateway on ${base} (config ${CONFIG}, ${workers}); demo services on 127.0.0.1:3001-3004.
Try:
  curl -i ${base}/api/v1/users
  curl -i ${base}/api/v2/users/1
  curl -i -H 'X-User: alice' ${base}/api/products     # 90/10 canary split, sticky per X-User
  curl -N ${base}/events                              # server-sent events, streamed
  curl -i ${base}/nowhere                             # 404 in the common error shape
  curl -i -X DELETE ${base}/api/v1/users              # 405 with Allow
  curl ${admin}/readyz
  curl ${admin}/routes
Ctrl-C to stop.`,
);

const stop = async () => {
  await gw.shutdown();
  await Promise.all(servers.map((s) => s.shutdown()));
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGHUP", () => void gw.reload("SIGHUP"));
