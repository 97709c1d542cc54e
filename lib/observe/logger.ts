/**
 * Operational log: JSON lines on stderr (the access log has its own stream).
 * `every` rate-limits a repeated message so that a failing dependency logs once
 * per interval instead of once per request.
 */

export type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at most once per `intervalMs` for `key`; returns whether it logged. */
  every(
    key: string,
    intervalMs: number,
    level: Level,
    msg: string,
    fields?: Record<string, unknown>,
  ): boolean;
}

export function errorFields(e: unknown): Record<string, unknown> {
  if (e instanceof Error) {
    return { error: e.message, error_name: e.name, ...(e.cause ? { cause: String(e.cause) } : {}) };
  }
  return { error: String(e) };
}

export class JsonLogger implements Logger {
  private readonly last = new Map<string, number>();
  private readonly min: number;
  constructor(
    level: Level = "info",
    private readonly write: (line: string) => void = (l) => console.error(l),
    private readonly now: () => number = Date.now,
  ) {
    this.min = RANK[level];
  }
  log(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (RANK[level] < this.min) return;
    this.write(JSON.stringify({ time: new Date(this.now()).toISOString(), level, msg, ...fields }));
  }
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log("error", msg, fields);
  }
  every(
    key: string,
    intervalMs: number,
    level: Level,
    msg: string,
    fields?: Record<string, unknown>,
  ) {
    const now = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < intervalMs) return false;
    this.last.set(key, now);
    this.log(level, msg, fields);
    return true;
  }
}

/** Discards everything; for tests that do not look at logs. */
export const silentLogger: Logger = new JsonLogger("error", () => {});
