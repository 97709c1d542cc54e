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
    options?: { cause?: unknown; sent?: boolean; waitedOnClient?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.sent = options?.sent ?? (kind !== "connect_error" && kind !== "connect_timeout");
    this.waitedOnClient = options?.waitedOnClient ?? false;
  }
  /** Whether the upstream may have seen (and acted on) the request. */
  readonly sent: boolean;
  /**
   * A timeout that struck while the exchange waited for the client's body, not for the
   * upstream: it says nothing of the target's health.
   */
  readonly waitedOnClient: boolean;
}
