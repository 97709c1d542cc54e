/** PROXY protocol headers as a load balancer sends them, for tests. */
import { formatIp, isV4, parseIp } from "../../lib/security/cidr.ts";

export interface Endpoint {
  hostname: string;
  port: number;
}

export function proxyV1(src: Endpoint, dst: Endpoint): Uint8Array {
  const family = src.hostname.includes(":") ? "TCP6" : "TCP4";
  return new TextEncoder().encode(
    `PROXY ${family} ${src.hostname} ${dst.hostname} ${src.port} ${dst.port}\r\n`,
  );
}

/** A v2 PROXY header (TCP over IPv4 or IPv6); `null` endpoints make a LOCAL header. */
export function proxyV2(
  src: Endpoint | null,
  dst: Endpoint | null,
  tlvs: number[] = [],
): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  if (!src || !dst) return new Uint8Array([...signature, 0x20, 0x00, 0x00, 0x00]);
  const s = parseIp(src.hostname)!;
  const d = parseIp(dst.hostname)!;
  const v4 = isV4(s) && !src.hostname.includes(":");
  const addr = (ip: typeof s) =>
    v4 ? formatIp(ip).split(".").map(Number) : ip.flatMap((w) => [
      w >>> 24,
      (w >>> 16) & 255,
      (w >>> 8) & 255,
      w & 255,
    ]);
  const port = (p: number) => [p >> 8, p & 255];
  const body = [...addr(s), ...addr(d), ...port(src.port), ...port(dst.port), ...tlvs];
  return new Uint8Array([
    ...signature,
    0x21,
    v4 ? 0x11 : 0x21,
    body.length >> 8,
    body.length & 255,
    ...body,
  ]);
}
