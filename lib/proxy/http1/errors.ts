/** Failures of an exchange with an upstream, classified for retries and status mapping. */

export type UpstreamErrorKind =
  /** Could not open a connection: nothing was sent. */
  | "connect_error"
  | "connect_timeout"
  /** The connection broke before a complete response head arrived. */
  | "reset"
  /** No response head within the first-byte or request deadline. */
  | "timeout"
  /** The upstream sent something that is not HTTP/1.1. */
  | "protocol"
  /** The client went away, or the caller gave up. */
  | "aborted";

export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    options?: { cause?: unknown; sent?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.sent = options?.sent ?? (kind !== "connect_error" && kind !== "connect_timeout");
  }
  /** Whether the upstream may have seen (and acted on) the request. */
  readonly sent: boolean;
}
