/** W3C Trace Context (traceparent / tracestate): continue a trace or start one. */

export interface TraceContext {
  traceId: string;
  /** The caller's span, if the request carried a valid traceparent. */
  parentId: string | null;
  /** The span this gateway hop adds; sent upstream as the parent. */
  spanId: string;
  flags: string;
  state: string | null;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);
const MAX_TRACESTATE_MEMBERS = 32;
const MAX_TRACESTATE_CHARS = 512;
/** Entries longer than this go first when a tracestate is cut. */
const MAX_TRUNCATED_FIRST = 128;
/** The flags version 00 defines (Level 2): sampled (01) and random-trace-id (02). */
const DEFINED_FLAGS = 0x03;
const FLAGS_HEX = ["00", "01", "02", "03"];
/** Sampled, and random: every byte of the trace id comes from the CSPRNG (Level 2 §3.2.2.5.2). */
const NEW_TRACE_FLAGS = "03";

/**
 * Ids are cut from one long string of random hex, made from 4 KiB of the
 * CSPRNG at a time: a slice of it is a view in V8 (no copy), where making each
 * id's string alone showed at 1.1 % of the serving thread's profile.
 */
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
const poolHex = new Uint8Array(2 * POOL_BYTES);
const ascii = new TextDecoder();
let hex = "";
let hexOffset = 0;
const HEX_DIGITS = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

/** Random lower-case hex of `bytes` bytes (at most 4 KiB), drawn from the CSPRNG. */
export function randomHex(bytes: number): string {
  const chars = 2 * bytes;
  if (hexOffset + chars > hex.length) refillHex();
  const id = hex.slice(hexOffset, hexOffset + chars);
  hexOffset += chars;
  return id;
}

function refillHex(): void {
  crypto.getRandomValues(pool);
  for (let i = 0; i < POOL_BYTES; i++) {
    const b = pool[i]!;
    poolHex[2 * i] = HEX_DIGITS[b >> 4]!;
    poolHex[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  hex = ascii.decode(poolHex);
  hexOffset = 0;
}

/** The parts of a valid traceparent (version, trace id, parent id, flags), or null. */
function validTraceparent(header: string | null): RegExpExecArray | null {
  const m = header ? TRACEPARENT.exec(header.trim()) : null;
  return m && m[1] !== "ff" && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN && (m[1] !== "00" || !m[5])
    ? m
    : null;
}

/**
 * The trace id of the caller's traceparent when it is valid, else null: what
 * the access log records when the gateway does not trace.
 */
export function callerTraceId(header: string | null): string | null {
  return validTraceparent(header)?.[2] ?? null;
}

export function parseTraceparent(header: string | null, state: string | null): TraceContext {
  const m = validTraceparent(header);
  if (m) {
    return {
      traceId: m[2]!,
      parentId: m[3]!,
      spanId: randomHex(8),
      flags: propagatedFlags(m[4]!),
      state: boundedTracestate(state),
    };
  }
  // An invalid traceparent starts a new trace; its tracestate goes with it (W3C §3.3).
  return {
    traceId: randomHex(16),
    parentId: null,
    spanId: randomHex(8),
    flags: NEW_TRACE_FLAGS,
    state: null,
  };
}

/** The caller's sampled and random-trace-id bits kept; the undefined ones must be zero. */
function propagatedFlags(flags: string): string {
  return flagsHex(parseInt(flags, 16));
}

/** The defined bits of a flags byte (OpenTelemetry's `traceFlags`) as sent upstream. */
export function flagsHex(bits: number): string {
  return FLAGS_HEX[bits & DEFINED_FLAGS]!;
}

/** The flags as the byte OpenTelemetry's span context takes. */
export function flagBits(t: TraceContext): number {
  return parseInt(t.flags, 16);
}

/**
 * The caller's tracestate: null past 32 list members (the spec's bound on a
 * list), cut to the 512 characters a vendor must pass on when longer.
 */
function boundedTracestate(state: string | null): string | null {
  if (state === null) return null;
  if (state.length > MAX_TRACESTATE_CHARS) return truncatedTracestate(state);
  let members = 0;
  for (const member of state.split(",")) if (member.trim() !== "") members++;
  return members <= MAX_TRACESTATE_MEMBERS ? state : null;
}

/**
 * A tracestate over 512 characters cut the spec's way (W3C Trace Context
 * §3.3.1.5): whole entries, those over 128 characters first, then from the
 * end, so the members other vendors keep on the left survive.
 */
function truncatedTracestate(state: string): string | null {
  const members = state.split(",").map((m) => m.trim()).filter((m) => m !== "");
  if (members.length > MAX_TRACESTATE_MEMBERS) return null;
  let length = members.join(",").length;
  for (let i = members.length - 1; i >= 0 && length > MAX_TRACESTATE_CHARS; i--) {
    if (members[i]!.length > MAX_TRUNCATED_FIRST) length -= members.splice(i, 1)[0]!.length + 1;
  }
  while (length > MAX_TRACESTATE_CHARS) length -= members.pop()!.length + 1;
  return members.length > 0 ? members.join(",") : null;
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}
