/**
 * Everything one request carries through the pipeline. Built once per request
 * by the server; policies read it and record what they decided (for the access
 * log and metrics).
 */
import { type ErrorCode, type ErrorDetails, errorResponse } from "./errors.ts";
import type { TraceContext } from "../observe/trace.ts";
import type { HeaderEdits } from "../proxy/header_edits.ts";
import { declaredLength, type HeaderFields } from "./header_fields.ts";
import type { Bytes } from "../proxy/http1/bytes.ts";
import type { IncomingRequest } from "../server/incoming.ts";
import { QueryParams } from "./query_params.ts";

export interface ListenerInfo {
  readonly name: string;
  readonly tls: boolean;
}

/** Who the caller is, once a provider has established it. */
export interface Identity {
  /** Provider that authenticated the request (`bearer`, `keys`, ...). */
  provider: string;
  /** Token subject, key owner or certificate identity. */
  subject: string;
  scopes: ReadonlySet<string>;
  claims: Readonly<Record<string, unknown>>;
}

/** A consumer (an application or team), with its plan. */
export interface Consumer {
  readonly id: string;
  readonly plan: string | null;
  readonly scopes: ReadonlySet<string>;
  /** False for a caller a provider vouches for but the config does not list. */
  readonly configured: boolean;
}

/** Peer certificate of an mTLS connection, as verified by the TLS layer. */
export interface ClientCertificate {
  subjectCN: string | null;
  sans: { uris: string[]; dns: string[]; emails: string[] };
  fingerprint256: string;
  validTo: string;
}

export class RequestContext {
  /** Route chosen by the router; set before the route's chain runs. */
  route: { readonly name: string } | null = null;
  /** Named path parameters from the route pattern. */
  params: Record<string, string> | null = null;
  /** Requested API version, when versioning is configured. */
  version: string | null = null;
  consumer: Consumer | null = null;
  identity: Identity | null = null;
  /**
   * The identity headers auth sent upstream (rendered once per identity): what the upstream can
   * tell callers apart by, beyond the consumer (a user, their scopes, mapped claims).
   */
  identityHeaders: readonly (readonly [string, string])[] | null = null;
  clientCert: ClientCertificate | null = null;
  /** Why a client certificate that was presented is not trusted (expired, unknown CA). */
  clientCertError: string | null = null;
  /** Whether the TCP peer is a trusted proxy (its X-Forwarded-* are believed). */
  peerTrusted = false;
  /** Path and query sent upstream (after rewrites). */
  upstreamPath: string;
  /** Request body as it will be sent upstream (policies may wrap or replace it). */
  body: ReadableStream<Bytes> | Bytes | null;
  /** Known length of `body`, or null when it must be streamed chunked. */
  bodyLength: number | null;

  // What happened, for the access log and metrics.
  errorCode: ErrorCode | null = null;
  upstreamName: string | null = null;
  upstreamTarget: string | null = null;
  upstreamMs = -1;
  attempts = 0;
  rateLimit: "allowed" | "limited" | "shadow_limited" | null = null;
  cacheStatus: "HIT" | "MISS" | "STALE" | "BYPASS" | null = null;
  authFailure: { provider: string; reason: string } | null = null;
  bytesIn = 0;
  private localsMap: Map<string, unknown> | null = null;
  /** Where the client's abort signal comes from when the server makes it on demand. */
  signalOf: (() => AbortSignal) | null = null;
  /** The request's header fields, for reading (cheaper than `request.headers`). */
  readonly headers: HeaderFields;

  constructor(
    readonly incoming: IncomingRequest,
    readonly method: string,
    /** Normalised path used for routing. */
    public path: string,
    /** Raw query string including `?`, or "". */
    readonly query: string,
    /** Host (lower-case, without port). */
    readonly host: string,
    /** Address of the TCP peer. */
    readonly peerIp: string,
    /** Address of the client, after trusted proxies are peeled off. */
    public clientIp: string,
    readonly listener: ListenerInfo,
    /** Wall-clock time at arrival (ms), read once from the injected clock. */
    readonly now: number,
    /** Monotonic time at arrival (ms), for latencies. */
    readonly startMono: number,
    readonly requestId: string,
    /**
     * This hop's trace; null with `observe.tracing.enabled: false`, when the
     * gateway takes no part and the caller's trace fields go on as any other.
     */
    readonly trace: TraceContext | null,
    readonly upstreamHeaders: HeaderEdits,
  ) {
    this.headers = incoming.headers;
    this.upstreamPath = path + query;
    this.body = incoming.body;
    const cl = this.headers.get("content-length");
    this.bodyLength = cl === null ? null : declaredLength(cl);
  }

  /** The web Request (built on first use by the gateway's own HTTP/1.1 server). */
  get request(): Request {
    return this.incoming.request();
  }

  /** Aborts when the client goes away. */
  get signal(): AbortSignal {
    return this.signalOf === null ? this.request.signal : this.signalOf();
  }

  /** Scratch space for a policy to hand data to a later stage of the same chain. */
  get locals(): Map<string, unknown> {
    return this.localsMap ??= new Map();
  }

  private queryParamsCache: QueryParams | null = null;
  /** The query's parameters, each read when first asked for. */
  get queryParams(): QueryParams {
    return this.queryParamsCache ??= new QueryParams(this.query);
  }

  /** Records the refusal and renders it in the common error shape. */
  refuse(code: ErrorCode, details?: ErrorDetails): Response {
    this.errorCode = code;
    return errorResponse(code, this.requestId, details);
  }
}
