/**
 * Reload on change of the config file. The folder is watched rather than the
 * file, so that editors that save by renaming a temporary file over it and
 * Kubernetes ConfigMaps (which swap a `..data` symlink) are seen too. Events
 * are debounced, and a change that leaves the file's text as it was when last
 * loaded triggers nothing.
 */
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "../observe/logger.ts";
import { errorFields } from "../observe/logger.ts";

export class ConfigWatcher {
  private readonly watcher: Deno.FsWatcher;
  private readonly name: string;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastText: string | null = null;
  private closed = false;

  constructor(
    readonly file: string,
    readonly debounceMs: number,
    private readonly onChange: () => void,
    private readonly logger: Logger,
  ) {
    const path = resolve(file);
    this.name = basename(path);
    this.watcher = Deno.watchFs(dirname(path), { recursive: false });
    void this.remember();
    void this.loop();
  }

  /** Notes the file's current text as loaded, so that its own event does not reload it again. */
  async remember(): Promise<void> {
    this.lastText = await this.read();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.watcher.close();
  }

  private async loop(): Promise<void> {
    try {
      for await (const event of this.watcher) {
        if (event.paths.some((p) => this.concerns(p))) this.schedule();
      }
    } catch (e) {
      if (!this.closed) {
        this.logger.error("config file watch stopped", { file: this.file, ...errorFields(e) });
      }
    }
  }

  private concerns(path: string): boolean {
    const name = basename(path);
    return name === this.name || name.startsWith("..data");
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.fire();
    }, this.debounceMs);
  }

  private async fire(): Promise<void> {
    const text = await this.read();
    if (this.closed || text === null || text === this.lastText) return;
    this.lastText = text;
    this.onChange();
  }

  private async read(): Promise<string | null> {
    try {
      return await Deno.readTextFile(this.file);
    } catch {
      // Mid-replace, or removed: the next event tells.
      return null;
    }
  }
}

/**
 * The watcher that `enabled` and `debounceMs` ask for: `current` when it fits,
 * else `current` closed and a new one (or none). A folder that cannot be
 * watched is logged; reloads then come from SIGHUP and POST /reload only.
 */
export function rewatch(
  current: ConfigWatcher | null,
  file: string,
  want: { enabled: boolean; debounceMs: number },
  onChange: () => void,
  logger: Logger,
): ConfigWatcher | null {
  if (current && want.enabled && current.debounceMs === want.debounceMs) return current;
  current?.close();
  if (!want.enabled) return null;
  try {
    return new ConfigWatcher(file, want.debounceMs, onChange, logger);
  } catch (e) {
    logger.error("cannot watch the config file; reload with SIGHUP or POST /reload", {
      file,
      ...errorFields(e),
    });
    return null;
  }
}
