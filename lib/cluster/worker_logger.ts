/** A logger that stamps every line with fixed fields (the worker index). */
import type { Level, Logger } from "../observe/logger.ts";

export function withFields(inner: Logger, fixed: Record<string, unknown>): Logger {
  const log = (level: Level, msg: string, fields?: Record<string, unknown>) =>
    inner.log(level, msg, { ...fixed, ...fields });
  return {
    log,
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
    every: (key, intervalMs, level, msg, fields) =>
      inner.every(key, intervalMs, level, msg, { ...fixed, ...fields }),
  };
}
