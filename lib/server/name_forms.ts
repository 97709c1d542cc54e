/**
 * Whether a presented name lies in a name constraint's subtree (RFC 5280
 * §4.2.1.10), for the forms a client certificate uses: dNSName, rfc822Name,
 * uniformResourceIdentifier and iPAddress (directory_name.ts has the
 * directoryName). Pure functions on the decoded values; each form's syntax is
 * checked first, and a name or a constraint outside it is not compared at all
 * (name_constraints.ts refuses the path instead).
 *
 * The answer is `yes`, `no`, or `maybe`: a wildcard dNSName stands for many
 * names, only some of which may lie in the subtree, and where readings of the
 * RFC differ (a URI host under a host constraint) the wider one says `maybe`.
 * A permitted subtree takes only `yes`; an excluded subtree is hit by `yes`
 * and by `maybe`. Both ways, doubt refuses.
 */

export type Within = "yes" | "no" | "maybe";

/** A letter, digit or underscore, then those or hyphens, not ending with a hyphen; 63 at most. */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const ALL_DIGITS = /^[0-9]+$/;

/**
 * A dNSName in the preferred name syntax (RFC 5280 §4.2.1.6, RFC 1034 §3.5),
 * with underscores, as rustls/webpki reads it: no empty label (so no trailing
 * dot), the last label not all digits, 253 characters at most. With
 * `wildcard`, a first label of `*` alone, followed by two labels or more.
 * Lower-cased; null when it is not one.
 */
export function dnsNameOf(text: string, wildcard = false): string | null {
  const name = text.toLowerCase();
  if (name.length === 0 || name.length > 253) return null;
  let labels = name.split(".");
  if (wildcard && labels[0] === "*") {
    labels = labels.slice(1);
    if (labels.length < 2) return null;
  }
  if (!labels.every((l) => LABEL.test(l)) || ALL_DIGITS.test(labels[labels.length - 1]!)) {
    return null;
  }
  return name;
}

/**
 * A dNSName constraint: a host and every name below it (`example.com`), the
 * names below a domain only (`.example.com`, as NSS, OpenSSL and webpki read
 * it), or every name (``). Lower-cased; null when it is none of these.
 */
export function dnsConstraintOf(text: string): string | null {
  if (text === "") return "";
  const base = dnsNameOf(text.startsWith(".") ? text.slice(1) : text);
  return base === null ? null : text.toLowerCase();
}

/** `name` (from dnsNameOf, wildcards allowed) against `constraint` (from dnsConstraintOf). */
export function dnsWithin(name: string, constraint: string): Within {
  if (!name.startsWith("*.")) return inDnsSubtree(name, constraint) ? "yes" : "no";
  // `*.d` stands for every name one label below d: all lie in the subtree when any name
  // below d would; one may when the subtree's top is one label below d. (Under `.l.d` none
  // does, strictly; webpki counts it a match, and an excluded subtree must refuse as it does.)
  const domain = name.slice(2);
  if (inDnsSubtree(name, constraint)) return "yes";
  const top = constraint.startsWith(".") ? constraint.slice(1) : constraint;
  const label = top.endsWith(`.${domain}`) ? top.slice(0, -domain.length - 1) : null;
  return label !== null && !label.includes(".") ? "maybe" : "no";
}

/** RFC 5280: "any DNS name that can be constructed by simply adding zero or more labels to the left-hand side". */
function inDnsSubtree(name: string, constraint: string): boolean {
  if (constraint === "") return true;
  if (constraint.startsWith(".")) return name.endsWith(constraint);
  return name === constraint || name.endsWith(`.${constraint}`);
}

/** An email address, split at its last `@`: a local part of printable ASCII, and a host. */
export interface Mailbox {
  readonly local: string;
  /** Lower-cased. */
  readonly host: string;
}

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/** An rfc822Name (`local@host`); null when it is not one. */
export function mailboxOf(text: string): Mailbox | null {
  const at = text.lastIndexOf("@");
  if (at <= 0) return null;
  const local = text.slice(0, at);
  const host = dnsNameOf(text.slice(at + 1));
  return PRINTABLE_ASCII.test(local) && host !== null ? { local, host } : null;
}

/**
 * An rfc822Name constraint (RFC 5280 §4.2.1.10): a mailbox (`u@example.com`),
 * every mailbox on one host (`example.com`), or every mailbox on the hosts
 * below a domain (`.example.com`). Null when it is none of these.
 */
export type EmailConstraint =
  | { readonly kind: "mailbox"; readonly mailbox: Mailbox }
  | { readonly kind: "host" | "below"; readonly host: string };

export function emailConstraintOf(text: string): EmailConstraint | null {
  if (text.includes("@")) {
    const mailbox = mailboxOf(text);
    return mailbox === null ? null : { kind: "mailbox", mailbox };
  }
  const below = text.startsWith(".");
  const host = dnsNameOf(below ? text.slice(1) : text);
  return host === null ? null : { kind: below ? "below" : "host", host };
}

/** The local part compares exactly, the host without case (RFC 5280 §7.5). */
export function emailWithin(name: Mailbox, constraint: EmailConstraint): Within {
  switch (constraint.kind) {
    case "mailbox":
      return name.local === constraint.mailbox.local && name.host === constraint.mailbox.host
        ? "yes"
        : "no";
    case "host":
      return name.host === constraint.host ? "yes" : "no";
    case "below":
      return name.host.endsWith(`.${constraint.host}`) ? "yes" : "no";
  }
}

const URI_START = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The host of a URI (`scheme://[userinfo@]host[:port][/...]`), lower-cased.
 * Null when there is none to hold to a constraint: no authority (`urn:...`,
 * `mailto:...`), an IP literal (RFC 5280 wants a fully qualified domain name),
 * a percent-encoded or otherwise not plain host name, a port that is not digits.
 */
export function uriHostOf(text: string): string | null {
  const start = URI_START.exec(text);
  if (!start) return null;
  const rest = text.slice(start[0].length);
  const authority = rest.slice(0, rest.search(/[/?#]|$/));
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  const colon = hostPort.indexOf(":");
  if (colon >= 0 && !/^[0-9]*$/.test(hostPort.slice(colon + 1))) return null;
  return dnsNameOf(colon >= 0 ? hostPort.slice(0, colon) : hostPort);
}

/** A URI constraint: a host (`example.com`) or the hosts below a domain (`.example.com`). */
export function uriConstraintOf(text: string): string | null {
  return text === "" ? null : dnsConstraintOf(text);
}

/**
 * RFC 5280: a host constraint is that host; `.example.com` is every host
 * below it. Later rustls/webpki versions (not Deno 2.9.6's) read a host
 * constraint as the host and every name below it, as for dNSName: a host
 * below a host constraint is `maybe`.
 */
export function uriWithin(host: string, constraint: string): Within {
  if (constraint.startsWith(".")) return host.endsWith(constraint) ? "yes" : "no";
  if (host === constraint) return "yes";
  return host.endsWith(`.${constraint}`) ? "maybe" : "no";
}

/** An iPAddress name: 4 octets (IPv4) or 16 (IPv6); null otherwise. */
export function ipAddressOf(octets: Uint8Array): Uint8Array | null {
  return octets.length === 4 || octets.length === 16 ? octets : null;
}

/** An iPAddress constraint: an address and a mask of as many octets. */
export interface IpRange {
  readonly address: Uint8Array;
  readonly mask: Uint8Array;
}

/**
 * 8 octets (IPv4) or 32 (IPv6): the address, then a mask whose ones all come
 * before its zeros (a CIDR prefix). Null otherwise, as webpki refuses others.
 */
export function ipRangeOf(octets: Uint8Array): IpRange | null {
  if (octets.length !== 8 && octets.length !== 32) return null;
  const half = octets.length / 2;
  const mask = octets.subarray(half);
  const prefix = mask.reduce((n, b) => n + popCount(b), 0);
  // Contiguous: the first `prefix` bits are ones, all the others zeros.
  for (let i = 0; i < mask.length; i++) {
    const ones = Math.min(Math.max(prefix - i * 8, 0), 8);
    if (mask[i] !== ((0xff << (8 - ones)) & 0xff)) return null;
  }
  return { address: octets.subarray(0, half), mask };
}

function popCount(b: number): number {
  let n = 0;
  for (let v = b; v; v >>= 1) n += v & 1;
  return n;
}

/** An IPv4 address is never in an IPv6 range, nor the other way round. */
export function ipWithin(address: Uint8Array, range: IpRange): Within {
  if (address.length !== range.address.length) return "no";
  for (let i = 0; i < address.length; i++) {
    if ((address[i]! & range.mask[i]!) !== (range.address[i]! & range.mask[i]!)) return "no";
  }
  return "yes";
}
