/**
 * The admin listener across reloads, for the single process and for the
 * workers' main thread alike: opened, moved or closed as `admin:` says. A move
 * does not wait for the old listener's requests (the reload may have been
 * asked for on it; see listener_swap.ts).
 */
import type { Logger } from "../observe/logger.ts";
import type { RunningListener } from "./listeners.ts";
import { replaceListener, retire, SwapFailed } from "./listener_swap.ts";

export interface AdminAt {
  host: string;
  port: number;
  token?: string | undefined;
}

const LOOPBACK = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

export class AdminListenerSlot {
  private running: RunningListener | null = null;
  /** Where it is open, to open it there again if a move fails. */
  private at: { host: string; port: number } | null = null;
  /** The address last warned of as open to anyone. */
  private exposed = "";
  /** Drains of admin listeners a move or removal replaced: `close` waits for them too. */
  private readonly retiring = new Set<Promise<void>>();

  constructor(
    private readonly open: (at: { host: string; port: number }) => Promise<RunningListener>,
    private readonly logger: Logger,
  ) {}

  get listener(): RunningListener | null {
    return this.running;
  }

  async apply(admin: AdminAt | undefined): Promise<void> {
    if (admin?.host !== this.at?.host || admin?.port !== this.at?.port) {
      const old = this.running;
      const oldAt = this.at;
      if (!admin) {
        this.running = this.at = null;
        if (old) retire(this.retiring, old.shutdown());
      } else {
        try {
          const swapped = await replaceListener(
            old,
            admin.port,
            () => this.open(admin),
            () => this.open(oldAt!),
          );
          retire(this.retiring, swapped.drained);
          this.running = swapped.running;
        } catch (e) {
          if (e instanceof SwapFailed) {
            retire(this.retiring, e.drained);
            this.running = e.restored;
            // Not open anywhere: the next reload tries again.
            if (e.restored === null) this.at = null;
          }
          throw e;
        }
        this.at = { host: admin.host, port: admin.port };
      }
    }
    this.warnIfExposed(admin);
  }

  /** Closes it and waits for its requests, and for those of the listeners it replaced. */
  async close(): Promise<void> {
    const running = this.running;
    this.running = this.at = null;
    await Promise.all([running?.shutdown(), ...this.retiring]);
  }

  /**
   * Warns, once per such setting, when the admin API (keys, revocations,
   * reloads, the config) is open beyond this machine to anyone: a listener not
   * on loopback without a token.
   */
  private warnIfExposed(admin: AdminAt | undefined): void {
    const exposed = admin && admin.token === undefined && !LOOPBACK.test(admin.host)
      ? `${admin.host}:${admin.port}`
      : "";
    if (exposed !== "" && exposed !== this.exposed) {
      this.logger.warn(
        "the admin API listens beyond loopback without a token: anyone reaching it can use it",
        { host: admin!.host, port: admin!.port },
      );
    }
    this.exposed = exposed;
  }
}
