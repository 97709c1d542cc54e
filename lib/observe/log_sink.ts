/**
 * Where access-log lines go: stdout, stderr or a file, written off the request
 * path. Lines are buffered and written in batches (when 64 KiB are pending or
 * every `flushMs`), one write at a time. If the destination cannot keep up,
 * lines past a cap are dropped and counted rather than held without bound.
 *
 * Sinks outlive plans: the registry hands out one sink per destination and
 * closes it when no plan uses it any more, so a reload neither loses buffered
 * lines nor reopens the file.
 */
import type { Logger } from "./logger.ts";
import { errorFields } from "./logger.ts";

const FLUSH_AT_BYTES = 64 * 1024;
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

/** Where bytes go: a file, or a standard stream. */
export interface Output {
  write(p: Uint8Array): Promise<number>;
  close?(): void;
}

/** The process's standard output, written to and never closed. */
export const processStdout: Output = { write: (p) => Deno.stdout.write(p) };

const encoder = new TextEncoder();

export class LogSink {
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private out: Output | null = null;
  /** Lines dropped because the destination fell behind or failed. */
  dropped = 0;
  flushMs: number;

  constructor(
    /** `stdout`, `stderr`, or an absolute file path. */
    readonly destination: string,
    flushMs: number,
    private readonly logger: Logger,
    private readonly stdout: Output,
  ) {
    this.flushMs = flushMs;
  }

  /** Opens the destination; a file that cannot be opened throws here, at config load. */
  async open(): Promise<void> {
    this.out = await this.openOutput();
  }

  /** Queues one line (without its newline). */
  write(line: string): void {
    if (this.pendingBytes >= MAX_PENDING_BYTES) {
      this.dropped++;
      this.logger.every(
        `access-log-drop:${this.destination}`,
        10_000,
        "warn",
        "access log behind; lines dropped",
        {
          destination: this.destination,
          dropped: this.dropped,
        },
      );
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= FLUSH_AT_BYTES) this.kick();
    else if (this.writing === null) this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(this.kick, this.flushMs);
    Deno.unrefTimer(this.timer as unknown as number);
  }

  /** Writes everything queued so far. */
  async flush(): Promise<void> {
    this.kick();
    await this.writing;
    // A line queued just as that write ended is not in it.
    if (this.pending.length > 0) {
      this.kick();
      await this.writing;
    }
  }

  /** Flushes, then closes and reopens a file destination (after log rotation moved it away). */
  async reopen(): Promise<void> {
    await this.flush();
    if (this.destination === "stdout" || this.destination === "stderr") return;
    const next = await this.openOutput();
    const old = this.out;
    this.out = next;
    old?.close?.();
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.out?.close?.();
    this.out = null;
  }

  private async openOutput(): Promise<Output> {
    // The standard streams are shared with the process: written to, never closed.
    if (this.destination === "stdout") return { write: (p) => this.stdout.write(p) };
    if (this.destination === "stderr") return { write: (p) => Deno.stderr.write(p) };
    return await Deno.open(this.destination, { write: true, append: true, create: true });
  }

  private readonly kick = (): void => {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.writing === null && this.pending.length > 0) {
      this.writing = this.drain().finally(() => {
        this.writing = null;
        // Lines queued as the last write finished.
        if (this.pending.length > 0) this.schedule();
      });
    }
  };

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const lines = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      try {
        if (this.out === null) throw new Error("the access log is closed");
        await writeAll(this.out, encoder.encode(lines.join("\n") + "\n"));
      } catch (e) {
        this.dropped += lines.length;
        this.logger.every(
          `access-log-error:${this.destination}`,
          10_000,
          "error",
          "access log write failed",
          {
            destination: this.destination,
            ...errorFields(e),
          },
        );
      }
    }
  }
}

async function writeAll(out: Output, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await out.write(bytes.subarray(off));
}

/** One sink per destination, shared by the plans that log there. */
export class LogSinks {
  private readonly sinks = new Map<string, { sink: LogSink; refs: number }>();
  private droppedByClosed = 0;
  /** Sinks let go of but still flushing: their drops count until they are closed. */
  private readonly closing = new Set<LogSink>();

  constructor(private readonly logger: Logger, private readonly stdout: Output = processStdout) {}

  async acquire(destination: string, flushMs: number): Promise<LogSink> {
    let entry = this.sinks.get(destination);
    if (entry === undefined) {
      const sink = new LogSink(destination, flushMs, this.logger, this.stdout);
      await sink.open();
      entry = this.sinks.get(destination) ?? { sink, refs: 0 };
      if (entry.sink !== sink) await sink.close();
      this.sinks.set(destination, entry);
    }
    entry.sink.flushMs = flushMs;
    entry.refs++;
    return entry.sink;
  }

  async release(sink: LogSink): Promise<void> {
    const entry = this.sinks.get(sink.destination);
    if (entry?.sink !== sink) return;
    if (--entry.refs > 0) return;
    this.sinks.delete(sink.destination);
    await this.close(sink);
  }

  /** Closes a sink let go of, its drops counted throughout: the counter never goes back. */
  private async close(sink: LogSink): Promise<void> {
    this.closing.add(sink);
    try {
      await sink.close();
    } finally {
      this.closing.delete(sink);
      this.droppedByClosed += sink.dropped;
    }
  }

  /** Lines dropped so far, by every sink. */
  get dropped(): number {
    let n = this.droppedByClosed;
    for (const { sink } of this.sinks.values()) n += sink.dropped;
    for (const sink of this.closing) n += sink.dropped;
    return n;
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.sinks.values()].map(({ sink }) => sink.flush()));
  }

  /** Reopens file sinks (SIGUSR1 after rotation); rejects if any could not be reopened. */
  async reopenAll(): Promise<void> {
    const results = await Promise.allSettled(
      [...this.sinks.values()].map(({ sink }) => sink.reopen()),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  async closeAll(): Promise<void> {
    const all = [...this.sinks.values()];
    this.sinks.clear();
    await Promise.all(all.map(({ sink }) => this.close(sink)));
  }
}
