/**
 * A Plan is a configuration compiled for serving: the route table with one
 * composed policy chain per route, the upstreams, and the settings the request
 * path reads. It is immutable; a reload builds a new one and swaps it in.
 */
import type { GatewayConfig, RouteConfig } from "../config/schema.ts";
import type { Handler } from "../core/pipeline.ts";
import type { RouteTable } from "../router/table.ts";
import type { PathRewrite } from "../router/rewrite.ts";
import type { VersionNegotiator } from "../router/version.ts";
import type { Upstream } from "../proxy/upstream.ts";
import type { CidrSet } from "../security/cidr.ts";
import type { RequestObserver } from "../observe/observer.ts";
import type { ClientIpHeader } from "../security/client_ip.ts";
import type { FilesRead } from "./files_read.ts";

export interface CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly config: RouteConfig;
  readonly rewrite: PathRewrite | null;
  /** Names of the policies in the route's chain, in order (for /routes). */
  readonly policies: readonly string[];
  readonly handler: Handler;
}

export interface PlanSettings {
  requestIdHeader: string;
  trustRequestId: boolean;
  via: string;
  tracing: boolean;
  mergeSlashes: boolean;
  allowPathParameters: boolean;
  trustedProxies: CidrSet;
  /** Metrics, access log and tracing around every request. */
  observer: RequestObserver;
  clientIpHeader: ClientIpHeader;
}

export class Plan {
  /** Requests being served on this plan; it is disposed when this drops to 0 after a swap. */
  inFlight = 0;
  private disposed = false;

  constructor(
    readonly config: GatewayConfig,
    /** SHA-256 of the config source. */
    readonly hash: string,
    readonly file: string,
    readonly routes: readonly CompiledRoute[],
    readonly table: RouteTable<CompiledRoute>,
    readonly upstreams: ReadonlyMap<string, Upstream>,
    readonly versions: VersionNegotiator | null,
    readonly settings: PlanSettings,
    /** Runs for every request: global policies, then routing and the route's chain. */
    readonly handle: Handler,
    private readonly disposers: (() => void | Promise<void>)[],
    private readonly activators: readonly (() => void)[] = [],
    /** Files the build read besides the config (files_read.ts). */
    readonly filesRead: FilesRead = new Map(),
  ) {}

  /** Runs what its stages registered for when it goes live; called by the holder's swap. */
  activate(): void {
    for (const a of this.activators) {
      try {
        a();
      } catch {
        // An activation is best effort, as a disposal is: the plan serves regardless.
      }
    }
  }

  /** Releases timers, connections and pools; called once no request uses the plan. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposers.reverse()) {
      try {
        await d();
      } catch {
        // Disposal is best effort; one failure must not keep the rest alive.
      }
    }
  }
}
