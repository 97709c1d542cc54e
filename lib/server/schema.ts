import { z } from "zod";
import {
  headerName,
  port,
  timerMs,
  timerMsOrZero,
  timerSeconds,
  timerSecondsOrZero,
} from "../config/common.ts";

export const tlsSchema = z.strictObject({
  cert: z.string().min(1).meta({ description: "Path to the PEM certificate chain" }),
  key: z.string().min(1).meta({ description: "Path to the PEM private key" }),
  client_ca: z.string().min(1).optional().meta({
    description: "Path to PEM CA certificates that client certificates must chain to (mTLS)",
  }),
  client_cert: z.enum(["required", "optional"]).optional().meta({
    description: "Whether a client certificate is required; needs client_ca",
  }),
  min_version: z.enum(["1.2", "1.3"]).default("1.2"),
  http2: z.boolean().default(false).meta({
    description:
      "Offer HTTP/2 by ALPN (served by the runtime's server, which lacks the upload back-pressure and the head timeout); not with client_ca or min_version 1.3",
  }),
});

export const listenerSchema = z.strictObject({
  name: z.string().min(1),
  host: z.string().min(1).default("0.0.0.0"),
  port,
  tls: tlsSchema.optional(),
  proxy_protocol: z.boolean().default(false).meta({
    description: "Expect a PROXY protocol v1/v2 header from trusted_proxies",
  }),
  proxy_protocol_timeout_ms: timerMs.optional().meta({
    description:
      "With proxy_protocol: how long a connection may take to send its PROXY header (default 5000)",
  }),
  max_connections: z.number().int().positive().optional().meta({
    description:
      "Client connections the listener holds at once, per isolate; for one more, the longest idle one is closed (gateway_listener_connections_reclaimed_total), or with none idle the new one as soon as it is accepted (gateway_listener_connections_refused_total). Not with tls.http2",
  }),
}).superRefine((l, ctx) => {
  if (l.tls?.client_cert && !l.tls.client_ca) {
    ctx.addIssue({
      code: "custom",
      path: ["tls", "client_ca"],
      message: "client_cert needs client_ca: the CA that client certificates must chain to",
    });
  }
  if (l.tls?.http2 && (l.tls.client_ca || l.tls.min_version === "1.3")) {
    ctx.addIssue({
      code: "custom",
      path: ["tls", "http2"],
      message:
        "HTTP/2 is not offered with client_ca or min_version 1.3: those listeners serve HTTP/1.1 only",
    });
  }
  if (l.tls?.http2 && l.max_connections !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["max_connections"],
      message:
        "max_connections is not available with tls.http2: the runtime's HTTP/2 server accepts the connections itself",
    });
  }
});

export const adminSchema = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: port.default(9901),
  token: z.string().min(1).optional().meta({
    description: "When set, admin requests need `Authorization: Bearer <token>`",
  }),
});

export const configWatchSchema = z.strictObject({
  enabled: z.boolean().default(true).meta({
    description: "Reload when the config file changes (besides SIGHUP and POST /reload)",
  }),
  debounce_ms: timerMsOrZero.default(300).meta({
    description: "Quiet time after the last change before reloading (editors write in steps)",
  }),
});

/**
 * `--workers N` only: the main thread pings each worker, which answers from its
 * event loop, and terminates one silent for `kill_after_s` (`cluster/watchdog.ts`).
 * Defaults: a ping a second is one small message per worker, nothing to a
 * gateway; 10 s of silence is far beyond a GC pause or any synchronous step a
 * healthy worker takes (parsing a 10 MB JSON body takes well under a second),
 * and twice the admin API's 5 s wait, so `/readyz` has named the worker before
 * it is killed.
 */
export const watchdogSchema = z.strictObject({
  interval_ms: timerMs.default(1000).meta({
    description: "--workers N: how often the main thread pings each worker",
  }),
  kill_after_s: timerSecondsOrZero.default(10).meta({
    description:
      "--workers N: a worker that has not answered a ping for this long is terminated and restarted; 0: never (the pings still feed gateway_worker_silent_seconds)",
  }),
});

export const serverSchema = z.strictObject({
  drain_timeout_s: timerSeconds.default(30).meta({
    description: "On SIGTERM/SIGINT, how long in-flight requests may take to finish",
  }),
  drain_delay_s: timerSecondsOrZero.default(0).meta({
    description:
      "On SIGTERM/SIGINT, how long the listeners go on serving before they close, with /readyz 503 and every answer closing its connection: time for a load balancer's health checks to take the instance out",
  }),
  request_id_header: headerName.default("X-Request-Id"),
  trust_request_id: z.boolean().default(true).meta({
    description: "Propagate a request id sent by the client instead of generating one",
  }),
  via: z.string().min(1).default("gateway").meta({
    description: "Pseudonym in the Via header added to forwarded messages",
  }),
  keepalive_timeout_s: z.number().positive().default(75).meta({
    description:
      "Plain HTTP listeners: how long a kept-alive client connection may wait for its next request",
  }),
  workers: z.number().int().min(1).optional().meta({
    description:
      "Worker isolates sharing the listeners (reusePort); --workers wins; default one per core",
  }),
  config_watch: configWatchSchema.default(configWatchSchema.parse({})),
  watchdog: watchdogSchema.default(watchdogSchema.parse({})),
});

export type ListenerConfig = z.output<typeof listenerSchema>;
export type AdminConfig = z.output<typeof adminSchema>;
export type ServerConfig = z.output<typeof serverSchema>;
export type ConfigWatchConfig = z.output<typeof configWatchSchema>;
export type WatchdogConfig = z.output<typeof watchdogSchema>;
