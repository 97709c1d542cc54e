/** What stage builders get while a plan is being compiled. */
import type { GatewayConfig } from "../config/schema.ts";
import type { KeyPath } from "../config/issues.ts";
import { ConfigError } from "../config/issues.ts";
import type { YamlSource } from "../config/yaml_source.ts";
import type { Upstream } from "../proxy/upstream.ts";
import type { RuntimeDeps } from "./deps.ts";
import { textDigest } from "./files_read.ts";

export class BuildContext {
  private readonly sharedObjects = new Map<string, Promise<unknown>>();
  readonly disposers: (() => void | Promise<void>)[] = [];
  readonly activators: (() => void)[] = [];
  /** Files read for the plan, by resolved path, with the digest of what they held. */
  readonly filesRead = new Map<string, string>();

  constructor(
    readonly config: GatewayConfig,
    readonly deps: RuntimeDeps,
    readonly source: YamlSource,
    /** Folder of the config file; relative paths in the config resolve against it. */
    readonly baseDir: string,
    readonly upstreams: ReadonlyMap<string, Upstream>,
  ) {}

  /** A plan-wide object (an auth provider, a limiter) created on first use and shared by routes. */
  shared<T>(key: string, create: () => T | Promise<T>): Promise<T> {
    let p = this.sharedObjects.get(key) as Promise<T> | undefined;
    if (!p) {
      p = Promise.resolve().then(create);
      this.sharedObjects.set(key, p);
    }
    return p;
  }

  /**
   * Registers work for when the plan goes live (swapped in at start or by a
   * reload), never for a plan that is built but not served.
   */
  onActivate(fn: () => void): void {
    this.activators.push(fn);
  }

  /** Registers cleanup for when the plan is retired. */
  onDispose(fn: () => void | Promise<void>): void {
    this.disposers.push(fn);
  }

  /** Resolves a path from the config against the config file's folder. */
  resolvePath(p: string): string {
    return p.startsWith("/") ? p : `${this.baseDir}/${p}`;
  }

  /** Reads a file the config names; a reload of the same config reads it again if it changed. */
  async readTextFile(p: string): Promise<string> {
    const path = this.resolvePath(p);
    const text = await Deno.readTextFile(path);
    this.filesRead.set(path, textDigest(text));
    return text;
  }

  /** Stops the build with an error positioned at a key of the config. */
  fail(path: KeyPath, message: string): never {
    throw new ConfigError([this.source.issue(path, message)]);
  }
}
