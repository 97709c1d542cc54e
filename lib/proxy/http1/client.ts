/**
 * One HTTP/1.1 exchange over a pooled connection: write the request (streaming
 * its body), read the response head, hand back the body as bytes or a stream.
 * The connection returns to the pool only after both messages ended cleanly.
 */
import { type Bytes, type ByteString, LAST_CHUNK } from "./bytes.ts";
import { type BodyChunks, bodyChunks, heldChunks } from "./body_reader.ts";
import type { UpstreamConnection } from "./connection.ts";
import { responseBody } from "./body.ts";
import {
  endedBeforeHead,
  ProtocolError,
  type ResponseHead,
  takeResponseHead,
} from "./response_head.ts";
import type { TargetPool } from "./pool.ts";
import { UpstreamError } from "./errors.ts";
import { deadlines, type Watched } from "./deadlines.ts";
import { monoNow } from "../../core/clock.ts";

export interface UpstreamRequest {
  method: string;
  /** Origin-form target: path and query. */
  path: string;
  /** Header lines, each `name: value\r\n`, including Host; no framing headers. */
  headerBlock: string;
  body: ReadableStream<Bytes> | Bytes | null;
  /** Length of a streamed body when known; null streams it chunked. */
  bodyLength: number | null;
}

export interface ExchangeOptions {
  connectTimeoutMs: number;
  /** From the request written to the response head. */
  firstByteTimeoutMs: number;
  /** The whole exchange, response body included. */
  requestTimeoutMs: number;
  /** When the caller began the exchange (`monoNow`), if that was before this call. */
  startedAt?: number;
  /**
   * Aborts the exchange (the client went away). A function is called only for
   * exchanges that last: reading `Request.signal` has a cost on every response.
   */
  signal?: AbortSignal | (() => AbortSignal) | null;
  /** Called once when the exchange is over, after the response body ended or failed. */
  onEnd?: (error: unknown) => void;
}

export interface UpstreamResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** A small body read whole is a byte string (see ParsedResponse). */
  body: Bytes | ByteString | ReadableStream<Bytes> | null;
  /** The upstream's Content-Length (framing, so not among `headers`), null when it sent none. */
  contentLength: number | null;
  /** Whether the request went out on a connection that had served before. */
  reused: boolean;
}

const SMALL_BODY = 16 * 1024;

/** Sends one request to the pool's target. Throws `UpstreamError`, or the body's own error. */
export function exchange(
  pool: TargetPool,
  req: UpstreamRequest,
  opts: ExchangeOptions,
): Promise<UpstreamResponse> {
  return attempt(pool, req, opts, !(req.body instanceof ReadableStream), false);
}

/** Thrown inside `attempt` when a reused connection turned out dead before any answer. */
class StaleConnection extends Error {}

/** Methods that may be sent twice with the same effect (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

async function attempt(
  pool: TargetPool,
  req: UpstreamRequest,
  opts: ExchangeOptions,
  retryIfStale: boolean,
  fresh: boolean,
): Promise<UpstreamResponse> {
  if (opts.signal instanceof AbortSignal && opts.signal.aborted) {
    throw new UpstreamError("aborted", "The client went away", { sent: false });
  }
  // Taken without an await when one is parked: the common case costs no promise.
  // A retry opens its own: the other parked ones may be as dead as the first.
  const idle = fresh ? null : pool.takeIdle(opts.startedAt ?? deadlines.coarseNow());
  const conn = idle ?? await pool.open(opts.connectTimeoutMs);
  // The first byte is waited for from the sending: a connect (a TLS handshake), or the
  // attempt a retry resends, is not the answer's time. A parked connection is sent on at once.
  const sentAt = idle !== null && opts.startedAt !== undefined ? opts.startedAt : monoNow();
  const reused = conn.uses > 0;
  const x = new Exchange(pool, conn, opts);
  // A parked connection can die in the instant it is reused. A request that got no
  // answer at all is sent once more on a fresh connection if it can be replayed and
  // the upstream cannot have acted on it: an idempotent method, or a request whose
  // head never got out whole (an upstream may act on a head without its body).
  let written = false;
  try {
    x.arm(opts.startedAt ?? sentAt, sentAt);
    await x.write(req);
    written = true;
    // readResponseHead's loop, inline: one async layer fewer per exchange.
    let head: ResponseHead | null | undefined = takeResponseHead(conn);
    while (head === undefined) {
      head = conn.filled(await conn.readMore()) === 0
        ? endedBeforeHead(conn)
        : takeResponseHead(conn);
    }
    if (head === null) {
      if (mayResend(reused, retryIfStale, written, req.method)) throw new StaleConnection();
      throw new UpstreamError("reset", "The upstream closed the connection without answering");
    }
    x.gotHead();
    return x.response(head, req.method, reused);
  } catch (e) {
    x.fail();
    const err = e instanceof StaleConnection ? e : x.classify(e);
    if (
      err instanceof StaleConnection ||
      (err instanceof UpstreamError && err.kind === "reset" &&
        mayResend(reused, retryIfStale, written, req.method))
    ) {
      return await attempt(pool, req, opts, false, true);
    }
    throw err;
  }
}

function mayResend(
  reused: boolean,
  replayable: boolean,
  written: boolean,
  method: string,
): boolean {
  // `replayable` is false for a streamed body: what of it went out cannot be read again.
  return reused && replayable && (!written || IDEMPOTENT_METHODS.has(method));
}

/** Clients that went away are noticed from this age on; earlier the exchange is short anyway. */
const ABORT_WATCH_AFTER_MS = 50;

class Exchange implements Watched {
  private firstByteAt = Infinity;
  private requestAt = Infinity;
  private abortWatchAt = Infinity;
  nextCheck = Infinity;
  wheelSlot = -1;
  private timedOut: "first_byte" | "request" | "send" | null = null;
  /** The request deadline passed while the client's body was awaited (no write to the upstream pending). */
  private timedOutOnClient = false;
  /** While a piece of a streamed body waits to be taken by the upstream: when that is too long. */
  private sendStalledAt = Infinity;
  private aborted = false;
  /** Why the client's body failed (a size limit, the client hung up), else null. */
  private bodyError: unknown = null;
  private bodyWritten = true;
  private ended = false;
  private listening = false;
  private headReceived = false;
  private signal: AbortSignal | null = null;
  private readonly firstByteTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  /*
   * The caller's callbacks are let go of when the exchange ends. A finished
   * exchange can stay reachable for a while from garbage that only a full GC
   * collects, and through a callback the caller's whole request would too:
   * measured, every request then survived the young-generation GC and was
   * promoted, growing the heap by tens of MB a second under load.
   */
  private signalSource: ExchangeOptions["signal"];
  private onEnd: ExchangeOptions["onEnd"];
  /** Made only for an exchange that lasts long enough to watch its client. */
  private onAbort: (() => void) | null = null;

  constructor(
    private readonly pool: TargetPool,
    private readonly conn: UpstreamConnection,
    opts: ExchangeOptions,
  ) {
    this.firstByteTimeoutMs = opts.firstByteTimeoutMs;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.signalSource = opts.signal;
    this.onEnd = opts.onEnd;
  }

  /** `started`: when the exchange began (its connect included); `sent`: when this request goes out. */
  arm(started: number, sent: number): void {
    this.requestAt = started + this.requestTimeoutMs;
    this.firstByteAt = sent + this.firstByteTimeoutMs;
    if (this.signalSource) this.abortWatchAt = started + ABORT_WATCH_AFTER_MS;
    this.reschedule();
  }

  check(now: number): void {
    if (now >= this.abortWatchAt) {
      this.abortWatchAt = Infinity;
      const given = this.signalSource!;
      const signal = this.signal = typeof given === "function" ? given() : given;
      if (signal.aborted) return this.abort();
      this.onAbort = () => this.abort();
      signal.addEventListener("abort", this.onAbort, { once: true });
      this.listening = true;
    }
    if (now >= this.firstByteAt || now >= this.requestAt || now >= this.sendStalledAt) {
      if (this.timedOut === null) {
        this.timedOut = now >= this.firstByteAt
          ? "first_byte"
          : now >= this.requestAt
          ? "request"
          : "send";
        this.timedOutOnClient = this.timedOut === "request" && !this.bodyWritten &&
          this.sendStalledAt === Infinity;
      }
      this.firstByteAt = this.requestAt = this.sendStalledAt = Infinity;
      this.conn.close();
    }
    this.reschedule();
  }

  private reschedule(): void {
    this.nextCheck = Math.min(
      this.firstByteAt,
      this.requestAt,
      this.abortWatchAt,
      this.sendStalledAt,
    );
    if (this.nextCheck !== Infinity) deadlines.add(this);
    else deadlines.delete(this);
  }

  /**
   * Writes the request head and a small body; a streamed body goes on in the
   * background while the response is read. Not async for a request without
   * a streamed body: the write's own promise is the answer.
   */
  write(req: UpstreamRequest): Promise<void> {
    const body = req.body;
    let framing = "";
    if (body === null || body instanceof Uint8Array) {
      // An empty POST says so: without a length some upstreams answer 411 (RFC 9110 §8.6).
      const length = body === null ? 0 : body.length;
      if (length > 0 || methodExpectsBody(req.method)) framing = `content-length: ${length}\r\n`;
    } else {
      framing = req.bodyLength !== null
        ? `content-length: ${req.bodyLength}\r\n`
        : "transfer-encoding: chunked\r\n";
    }
    const head = `${req.method} ${req.path} HTTP/1.1\r\n${req.headerBlock}${framing}\r\n`;
    if (body instanceof ReadableStream) return this.writeStreaming(head, body, req.bodyLength);
    if (body === null || body.length === 0) return this.conn.writeHead(head);
    if (body.length <= SMALL_BODY) return this.conn.writeHead(head, body);
    // Sent as a stream is, while the answer is read: written whole first, an early answer
    // waited behind a write the upstream no longer took, and the upload counted as its wait.
    return this.writeStreaming(head, body, body.length);
  }

  private async writeStreaming(
    head: string,
    body: ReadableStream<Bytes> | Bytes,
    length: number | null,
  ): Promise<void> {
    await this.conn.writeHead(head);
    // Taken only now: a stream left unread by a head that failed can still go to another target.
    const chunks = body instanceof ReadableStream ? bodyChunks(body) : heldChunks(body);
    // Time to first byte counts from the end of the request: an upload may be long.
    this.firstByteAt = Infinity;
    this.reschedule();
    this.bodyWritten = false;
    this.writeBody(chunks, length);
  }

  /**
   * Streams the request body while the response is being awaited (the upstream
   * may answer early, RFC 9112 §9.5). When the upstream stops taking the body,
   * the connection is left open: an answer it sent first is still to be read.
   */
  private writeBody(chunks: BodyChunks, length: number | null): void {
    const conn = this.conn;
    let upstreamGone = false;
    const stopped = (e: unknown): never => {
      upstreamGone = true;
      throw e;
    };
    const send = (bytes: Uint8Array): Promise<void> => {
      if (conn.closed) {
        return stopped(new Error("Upstream connection closed while sending the body"));
      }
      this.watchSend(true);
      return conn.writeAll(bytes).then(() => this.watchSend(false), stopped);
    };
    (async () => {
      let sent = 0;
      while (true) {
        const chunk = await chunks.next();
        if (chunk === null) break;
        if (chunk.length === 0) continue;
        sent += chunk.length;
        if (length === null) {
          await send(chunks.framed(chunk));
        } else {
          if (sent > length) throw new ProtocolError("Request body longer than its Content-Length");
          await send(chunk);
        }
      }
      if (length === null) await send(LAST_CHUNK);
      else if (sent !== length) {
        throw new ProtocolError("Request body shorter than its Content-Length");
      }
      this.bodyWritten = true;
      this.awaitAnswer();
    })().catch((e) => {
      chunks.cancel(e);
      if (upstreamGone) return this.awaitAnswer();
      this.bodyError ??= e;
      conn.close();
    });
  }

  /**
   * An upstream that stops taking the body and never answers would hold the
   * exchange for good (the first-byte timer waits for the body's end): a piece
   * it leaves unread for `first_byte_ms` ends the exchange. The wait for the
   * client's next piece is the body timeout's, not this.
   */
  private watchSend(writing: boolean): void {
    if (this.headReceived || this.ended) return;
    this.sendStalledAt = writing ? deadlines.coarseNow() + this.firstByteTimeoutMs : Infinity;
    this.reschedule();
  }

  /** The request is over (sent, or the upstream stopped taking it): the answer is due. */
  private awaitAnswer(): void {
    if (this.headReceived || this.ended) return;
    this.firstByteAt = monoNow() + this.firstByteTimeoutMs;
    this.reschedule();
  }

  private abort(): void {
    this.aborted = true;
    this.conn.close();
  }

  gotHead(): void {
    this.headReceived = true;
    // An answer came: a body it left unread is no longer waited for.
    this.firstByteAt = this.sendStalledAt = Infinity;
    this.reschedule();
  }

  response(head: ResponseHead, method: string, reused: boolean): UpstreamResponse {
    if (head.status === 101) throw new ProtocolError("Unexpected protocol switch from upstream");
    return {
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body: responseBody(this.conn, head, method, (r, e) => this.finish(r, e)),
      contentLength: head.contentLength,
      reused,
    };
  }

  /**
   * The response ended (body fully read, or failed): give back the connection. Returns the
   * failure classified, for the body's reader; nothing for a body that ended well.
   */
  private finish(reusable: boolean, error: unknown): unknown {
    const failure = error == null ? null : this.classify(error);
    if (this.ended) return failure;
    this.ended = true;
    this.disarm();
    const clean = reusable && this.bodyWritten && this.bodyError === null &&
      this.conn.start === this.conn.end;
    this.pool.release(this.conn, clean);
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.(failure);
    return failure;
  }

  fail(): void {
    if (this.ended) return;
    this.conn.close();
    this.finish(false, null);
  }

  private disarm(): void {
    this.firstByteAt =
      this.requestAt =
      this.abortWatchAt =
      this.sendStalledAt =
        Infinity;
    this.reschedule();
    if (this.listening) this.signal!.removeEventListener("abort", this.onAbort!);
    this.signalSource = this.signal = this.onAbort = null;
  }

  /** Maps whatever broke the exchange to what the caller must know. */
  classify(e: unknown): unknown {
    // The client's body failed (a size limit, the client hung up): that is the cause.
    if (this.bodyError !== null && !(this.bodyError instanceof ProtocolError)) {
      return this.bodyError;
    }
    if (e instanceof UpstreamError) return e;
    if (this.aborted) return new UpstreamError("aborted", "The client went away", { cause: e });
    if (this.timedOut) {
      return new UpstreamError(
        "timeout",
        this.timedOut === "first_byte"
          ? `No response head within ${this.firstByteTimeoutMs} ms`
          : this.timedOut === "send"
          ? `The upstream took none of the request body for ${this.firstByteTimeoutMs} ms`
          : `The exchange took longer than ${this.requestTimeoutMs} ms`,
        { cause: e, waitedOnClient: this.timedOutOnClient },
      );
    }
    if (e instanceof ProtocolError) return new UpstreamError("protocol", e.message, { cause: e });
    return new UpstreamError("reset", `The upstream connection failed: ${(e as Error)?.message}`, {
      cause: e,
    });
  }
}

function methodExpectsBody(method: string): boolean {
  return method === "POST" || method === "PUT" || method === "PATCH";
}
