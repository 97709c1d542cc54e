/**
 * Entry of one worker isolate of `--workers N`: runs a full gateway on the
 * shared ports (SO_REUSEPORT) without its own admin listener, and obeys the
 * main thread's reload, admin and shutdown messages.
 */
/// <reference lib="deno.worker" />
import { Gateway } from "../server/gateway.ts";
import { ConfigError, formatIssue } from "../config/issues.ts";
import { JsonLogger } from "../observe/logger.ts";
import { withFields } from "./worker_logger.ts";
import {
  fromWire,
  type FromWorker,
  responseToWire,
  type StartOptions,
  type ToWorker,
} from "./messages.ts";
import { workerRpc } from "./rpc.ts";
import { WorkerCredentialStore } from "./shared_credentials.ts";
import { WorkerLimiterStore } from "./shared_limiter.ts";
import { LimiterTable } from "./limiter_table.ts";
import { InvalidationMarks } from "../cache/invalidation_marks.ts";

let gateway: Gateway | null = null;
let credentials: WorkerCredentialStore | null = null;
let limiter: WorkerLimiterStore | null = null;
workerRpc.attach((msg) => send(msg));

function send(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

async function start(o: StartOptions): Promise<void> {
  const logger = withFields(new JsonLogger(o.logLevel), { worker: o.index });
  credentials = new WorkerCredentialStore(workerRpc, o.credentials);
  limiter = new WorkerLimiterStore(workerRpc, new LimiterTable(o.limiterTable), o.index + 1);
  try {
    gateway = await Gateway.start({
      configFile: o.configFile,
      configText: o.configText,
      logger,
      reusePort: true,
      adminListener: false,
      configWatch: false,
      localCredentials: credentials,
      localLimiter: limiter,
      cacheMarks: new InvalidationMarks(o.cacheMarks),
    });
    send({ type: "started", addresses: gateway.addresses() });
  } catch (e) {
    const errors = e instanceof ConfigError
      ? e.issues.map(formatIssue)
      : [String((e as Error)?.message ?? e)];
    send({ type: "failed", errors });
  }
}

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case "start":
      await start(msg.options);
      return;
    case "reload": {
      const result = gateway
        ? await gateway.reload(msg.trigger)
        : { ok: false, hash: null, errors: ["the worker has not started"] };
      send({ type: "reloaded", id: msg.id, result });
      return;
    }
    case "admin": {
      const res = gateway
        ? await gateway.admin.handle(fromWire(msg.request))
        : new Response("worker not started", { status: 503 });
      const response = await responseToWire(res);
      send({ type: "admin-response", id: msg.id, response }, [response.body]);
      return;
    }
    case "shutdown":
      await gateway?.shutdown();
      send({ type: "stopped" });
      return;
    case "reopen-logs":
      await gateway?.reopenLogs();
      return;
    case "credentials":
      credentials?.heard(msg.change, Date.now());
      send({ type: "credentials-applied", id: msg.id });
      return;
    case "rpc-results":
      workerRpc.settle(msg.results);
      return;
    case "limiter-table":
      limiter?.useTable(new LimiterTable(msg.buffer));
      return;
    case "ping":
      // Answered here, by the event loop: an isolate stuck in a busy loop cannot.
      send({ type: "pong" });
      return;
  }
};
