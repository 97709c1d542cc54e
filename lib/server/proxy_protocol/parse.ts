/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2) that an L4 load
 * balancer sends first on a connection to say who the client is. Parsing is
 * incremental: call again with more bytes while the answer is `incomplete`.
 */
import { formatIp, parseIp } from "../../security/cidr.ts";

export interface ProxySource {
  hostname: string;
  port: number;
}

export type ProxyHeader =
  | { kind: "incomplete" }
  | { kind: "invalid"; reason: string }
  | {
    kind: "ok";
    version: 1 | 2;
    /** Bytes the header takes; what follows belongs to the proxied stream. */
    length: number;
    /** The client, or null when the sender did not relay one (LOCAL, UNKNOWN, unix sockets). */
    source: ProxySource | null;
  };

/** The longest v1 header, CRLF included (spec §2.1). */
export const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "

const INCOMPLETE: ProxyHeader = { kind: "incomplete" };

export function parseProxyHeader(buf: Uint8Array): ProxyHeader {
  if (startsWith(buf, V2_SIGNATURE)) {
    return buf.length < V2_SIGNATURE.length ? INCOMPLETE : parseV2(buf);
  }
  if (startsWith(buf, V1_PREFIX)) {
    return buf.length < V1_PREFIX.length ? INCOMPLETE : parseV1(buf);
  }
  return invalid("the connection did not start with a PROXY protocol header");
}

/** Whether `buf` and `prefix` agree on their common length. */
function startsWith(buf: Uint8Array, prefix: readonly number[]): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

function invalid(reason: string): ProxyHeader {
  return { kind: "invalid", reason };
}

function parseV1(buf: Uint8Array): ProxyHeader {
  let end = -1;
  const limit = Math.min(buf.length, V1_MAX_LENGTH);
  for (let i = V1_PREFIX.length; i < limit - 1; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    return buf.length >= V1_MAX_LENGTH
      ? invalid(`PROXY v1 header longer than ${V1_MAX_LENGTH} bytes`)
      : INCOMPLETE;
  }
  const length = end + 2;
  const line = new TextDecoder().decode(buf.subarray(0, end));
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "ok", version: 1, length, source: null };
  if (parts.length !== 6) return invalid("PROXY v1 header: expected 6 fields");
  const [, family, src, dst, srcPort, dstPort] = parts as [string, ...string[]];
  if (family !== "TCP4" && family !== "TCP6") {
    return invalid(`PROXY v1 header: unknown protocol ${JSON.stringify(family)}`);
  }
  const srcIp = parseIp(src!);
  const dstIp = parseIp(dst!);
  const v4 = family === "TCP4";
  if (!srcIp || !dstIp || src!.includes(":") === v4 || dst!.includes(":") === v4) {
    return invalid(`PROXY v1 header: addresses do not match ${family}`);
  }
  const port = parsePort(srcPort!);
  if (port === null || parsePort(dstPort!) === null) return invalid("PROXY v1 header: bad port");
  return { kind: "ok", version: 1, length, source: { hostname: formatIp(srcIp), port } };
}

function parsePort(s: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

const V2_HEADER = 16;

function parseV2(buf: Uint8Array): ProxyHeader {
  if (buf.length < V2_HEADER) return INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid(`PROXY v2 header: unsupported version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) return invalid(`PROXY v2 header: unknown command ${command}`);
  const family = buf[13]!;
  const bodyLength = (buf[14]! << 8) | buf[15]!;
  const length = V2_HEADER + bodyLength;
  if (buf.length < length) return INCOMPLETE;
  // LOCAL: the balancer's own connection (health checks); the peer is the truth.
  if (command === 0) return { kind: "ok", version: 2, length, source: null };
  const body = buf.subarray(V2_HEADER, length);
  switch (family) {
    case 0x11: // TCP over IPv4
    case 0x12: // UDP over IPv4
      if (body.length < 12) return invalid("PROXY v2 header: IPv4 address block too short");
      return {
        kind: "ok",
        version: 2,
        length,
        source: {
          hostname: `${body[0]}.${body[1]}.${body[2]}.${body[3]}`,
          port: (body[8]! << 8) | body[9]!,
        },
      };
    case 0x21: // TCP over IPv6
    case 0x22: { // UDP over IPv6
      if (body.length < 36) return invalid("PROXY v2 header: IPv6 address block too short");
      const words = [0, 1, 2, 3].map((i) =>
        ((body[i * 4]! << 24) | (body[i * 4 + 1]! << 16) | (body[i * 4 + 2]! << 8) |
          body[i * 4 + 3]!) >>> 0
      ) as unknown as [number, number, number, number];
      return {
        kind: "ok",
        version: 2,
        length,
        source: { hostname: formatIp(words), port: (body[32]! << 8) | body[33]! },
      };
    }
    case 0x00: // UNSPEC
    case 0x31: // unix stream
    case 0x32: // unix datagram
      return { kind: "ok", version: 2, length, source: null };
    default:
      return invalid(`PROXY v2 header: unknown address family 0x${family.toString(16)}`);
  }
}
