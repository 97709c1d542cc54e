/**
 * The watchdog of `--workers N` (after Envoy's): the main thread pings every
 * serving worker each `intervalMs`, and the worker answers from its event loop,
 * so an isolate stuck in a busy loop or a synchronous call that never ends
 * cannot. Such a worker does not crash, so nothing else would replace it, and
 * the kernel keeps handing it its share of new connections, which hang. One
 * whose ping has gone unanswered for `killAfterMs` is handed to `onSilent`
 * (the cluster terminates and restarts it), once.
 *
 * A worker has at most one ping outstanding: a stuck worker is not sent a ping
 * per interval that it would have to work through when it runs again.
 * Silence is measured from the unanswered ping, and checked at each interval.
 */
import { type ArmTimer, systemTimer } from "./worker_wait.ts";

/** A worker as the watchdog sees it (`WorkerHandle`). */
export interface WatchedWorker {
  readonly options: { readonly index: number };
  /** Posts a ping; `answered` runs when the worker's pong arrives (never after it is terminated). */
  ping(answered: () => void): void;
}

export interface WatchdogSettings {
  /** How often each worker is pinged (`server.watchdog.interval_ms`). */
  intervalMs: number;
  /** Silence after which a worker is given up; 0: never (`server.watchdog.kill_after_s`). */
  killAfterMs: number;
}

export interface WatchdogOptions<W extends WatchedWorker> {
  /** The workers to watch now: those serving (a restarting one is not pinged). */
  workers: () => readonly W[];
  /** A worker silent for `killAfterMs`: called once per worker, with how long it was silent. */
  onSilent: (w: W, silentMs: number) => void;
  timer?: ArmTimer;
  /** Milliseconds, monotonic. */
  now?: () => number;
}

/** How long a worker has not answered: 0 when it has answered every ping. */
export interface WorkerSilence {
  worker: number;
  silentMs: number;
}

interface Watched {
  /** When the outstanding ping was sent; null when none is. */
  pingedAt: number | null;
  /** Handed to `onSilent`: its answers, if any come, are ignored. */
  givenUp: boolean;
}

export class Watchdog<W extends WatchedWorker = WatchedWorker> {
  private readonly watched = new Map<W, Watched>();
  private readonly timer: ArmTimer;
  private readonly now: () => number;
  private settings: WatchdogSettings | null = null;
  private disarm: (() => void) | null = null;

  constructor(private readonly o: WatchdogOptions<W>) {
    this.timer = o.timer ?? systemTimer;
    this.now = o.now ?? (() => performance.now());
  }

  /**
   * Starts watching with `s`, or takes new settings (a reload): a new interval
   * takes effect from now; a new `killAfterMs` applies to pings outstanding too.
   */
  configure(s: WatchdogSettings): void {
    const intervalChanged = this.settings?.intervalMs !== s.intervalMs;
    this.settings = { ...s };
    if (intervalChanged || !this.disarm) this.arm();
  }

  /** Stops pinging (the cluster drains): clears the timer and forgets every worker. */
  stop(): void {
    this.disarm?.();
    this.disarm = null;
    this.settings = null;
    this.watched.clear();
  }

  /** Each watched worker's silence now (`gateway_worker_silent_seconds`). */
  silences(): WorkerSilence[] {
    const now = this.now();
    const out: WorkerSilence[] = [];
    for (const [w, s] of this.watched) {
      if (s.givenUp) continue;
      out.push({
        worker: w.options.index,
        silentMs: s.pingedAt === null ? 0 : now - s.pingedAt,
      });
    }
    return out.sort((a, b) => a.worker - b.worker);
  }

  private arm(): void {
    this.disarm?.();
    const s = this.settings;
    this.disarm = s ? this.timer(() => this.tick(), s.intervalMs) : null;
  }

  private tick(): void {
    this.disarm = null;
    const s = this.settings;
    if (!s) return;
    const now = this.now();
    const workers = this.o.workers();
    // A restarted worker is a new handle: the entries of the ones replaced go.
    for (const w of this.watched.keys()) if (!workers.includes(w)) this.watched.delete(w);
    for (const w of workers) {
      let state = this.watched.get(w);
      if (!state) this.watched.set(w, state = { pingedAt: null, givenUp: false });
      if (state.givenUp) continue;
      if (state.pingedAt === null) {
        state.pingedAt = now;
        const answered = state;
        w.ping(() => {
          if (!answered.givenUp) answered.pingedAt = null;
        });
        continue;
      }
      const silentMs = now - state.pingedAt;
      if (s.killAfterMs > 0 && silentMs >= s.killAfterMs) {
        state.givenUp = true;
        this.o.onSilent(w, silentMs);
      }
    }
    // `onSilent` may have stopped the watchdog (a drain): only a running one re-arms.
    if (this.settings && !this.disarm) this.arm();
  }
}
