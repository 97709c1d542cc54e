/**
 * IP addresses and CIDR blocks, IPv4 and IPv6. Addresses are held as four 32-bit
 * words (IPv4 as its IPv4-mapped IPv6 form, ::ffff:a.b.c.d), so one comparison
 * covers both families and a mapped address matches an IPv4 rule. An IPv6
 * block wider than the mapped range (`::/0`, `2000::/3`) holds no IPv4
 * address: `deny: ["::/0"]` means every IPv6 client, as it does in nginx.
 */

export type Ip = readonly [number, number, number, number];

function parseV4(s: string): number | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

/** Parses an IPv4 or IPv6 address (brackets and a zone id are tolerated). */
export function parseIp(input: string): Ip | null {
  let s = input.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) {
    const v4 = parseV4(s);
    return v4 === null ? null : [0, 0, 0xffff, v4];
  }
  const groups: number[] = [];
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parseHalf = (h: string): number[] | null => {
    if (h === "") return [];
    const out: number[] = [];
    const items = h.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseV4(item);
        if (v4 === null) return null;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = parseHalf(halves[0]!);
  const tail = halves.length === 2 ? parseHalf(halves[1]!) : [];
  if (!head || !tail) return null;
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    groups.push(...head, ...new Array(fill).fill(0), ...tail);
  } else {
    if (head.length !== 8) return null;
    groups.push(...head);
  }
  return [
    ((groups[0]! << 16) | groups[1]!) >>> 0,
    ((groups[2]! << 16) | groups[3]!) >>> 0,
    ((groups[4]! << 16) | groups[5]!) >>> 0,
    ((groups[6]! << 16) | groups[7]!) >>> 0,
  ];
}

/** Whether an address is IPv4 (including IPv4-mapped IPv6). */
export function isV4(ip: Ip): boolean {
  return ip[0] === 0 && ip[1] === 0 && ip[2] === 0xffff;
}

/** Canonical text: dotted quad for IPv4 and mapped addresses, compressed IPv6 otherwise. */
export function formatIp(ip: Ip): string {
  if (isV4(ip)) {
    const v = ip[3];
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (const w of ip) g.push(w >>> 16, w & 0xffff);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export interface Cidr {
  readonly text: string;
  readonly base: Ip;
  /** Prefix length in the 128-bit space. */
  readonly bits: number;
}

/** Prefixes shorter than this span more than the IPv4-mapped range ::ffff:0:0/96. */
const MAPPED_BITS = 96;

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  const v4 = isV4(ip) && !text.slice(0, slash < 0 ? undefined : slash).includes(":");
  const max = v4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    len = Number(p);
    if (len > max) return null;
  }
  const bits = v4 ? MAPPED_BITS + len : len;
  return { text, base: mask(ip, bits), bits };
}

/**
 * Why a block cannot stand in the config, or null. Bits set past the prefix
 * (`10.0.0.1/8`) are refused rather than masked: it reads as one address but
 * would stand for 16 million.
 */
export function cidrError(text: string): string | null {
  const c = parseCidr(text);
  if (c === null) return "expected an IP address or CIDR block such as 10.0.0.0/8 or 2001:db8::/32";
  const slash = text.indexOf("/");
  if (slash < 0 || sameIp(parseIp(text.slice(0, slash))!, c.base)) return null;
  const address = text.slice(0, slash).trim();
  const base = formatIp(c.base);
  const block = isV4(c.base) && address.includes(":") ? `::ffff:${base}` : base;
  return `${text} has address bits set past its prefix: write ${block}${
    text.slice(slash)
  } for the block, or ${address} for the one address`;
}

function sameIp(a: Ip, b: Ip): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

function mask(ip: Ip, bits: number): Ip {
  const out = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    const b = Math.max(0, Math.min(32, bits - i * 32));
    out[i] = b === 0 ? 0 : b === 32 ? ip[i]! : (ip[i]! & (~0 << (32 - b))) >>> 0;
  }
  return out as unknown as Ip;
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  // An IPv4 address lies in such a block only through its mapped form, never meant by it.
  if (c.bits < MAPPED_BITS && isV4(ip)) return false;
  for (let i = 0; i < 4; i++) {
    const b = Math.max(0, Math.min(32, c.bits - i * 32));
    if (b === 0) return true;
    const m = b === 32 ? 0xffffffff : (~0 << (32 - b)) >>> 0;
    if (((ip[i]! & m) >>> 0) !== c.base[i]) return false;
  }
  return true;
}

/** A compiled list of blocks with a cached answer per address text. */
export class CidrSet {
  readonly blocks: readonly Cidr[];
  constructor(texts: readonly string[]) {
    this.blocks = texts.map((t) => {
      const c = parseCidr(t);
      if (!c) throw new Error(`Invalid CIDR block: ${t}`);
      return c;
    });
  }
  get size(): number {
    return this.blocks.length;
  }
  contains(ip: Ip | null): boolean {
    if (!ip) return false;
    for (const b of this.blocks) if (cidrContains(b, ip)) return true;
    return false;
  }
  containsText(address: string): boolean {
    return this.contains(parseIp(address));
  }
}
