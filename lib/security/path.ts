/**
 * Path normalisation, done once before routing; the result is both what the
 * router matches and what is forwarded, so the two can never disagree.
 *
 * - percent-encoded unreserved characters are decoded (`%7E` -> `~`), other
 *   escapes are kept with upper-case hex;
 * - encoded `/` or `\`, a raw `\` or `#`, NUL and control characters, malformed
 *   escapes, `..;` tricks, segments with `;parameters` (unless allowed) and
 *   paths that climb above the root are refused;
 * - dot segments are removed (RFC 3986 §5.2.4) and `//` merged (configurable);
 * - non-ASCII characters are percent-encoded as UTF-8, and ASCII that may not
 *   stand raw in a path (space, `"`, `<`, `{`, ...) is percent-encoded.
 */

export type NormalisedPath = { ok: true; path: string } | { ok: false; reason: string };

/** Paths made only of these (and without `//`) are already normal. */
const PLAIN = /^[A-Za-z0-9\-_~!$&'()*+,=:@/]*$/;
const HEX = "0123456789ABCDEF";

/** ASCII that may stand raw in a path segment (RFC 3986 pchar, less `%`). */
export function isPathChar(c: number): boolean {
  return isUnreserved(c) || c === 0x21 || c === 0x24 || (c >= 0x26 && c <= 0x2c) || c === 0x3a ||
    c === 0x3b || c === 0x3d || c === 0x40 || c === 0x2f;
}

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

export function normalisePath(
  raw: string,
  mergeSlashes = true,
  allowParameters = false,
): NormalisedPath {
  if (raw.length === 0 || raw.charCodeAt(0) !== 0x2f) {
    return { ok: false, reason: "path must start with /" };
  }
  if (PLAIN.test(raw) && !raw.includes("//")) return { ok: true, path: raw };

  // 1. Escapes: decode unreserved, refuse dangerous, normalise the rest.
  let decoded = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const h = hexValue(raw.charCodeAt(i + 1));
      const l = hexValue(raw.charCodeAt(i + 2));
      if (h < 0 || l < 0) return { ok: false, reason: "invalid percent-encoding" };
      const byte = h * 16 + l;
      if (byte === 0x2f || byte === 0x5c) {
        return { ok: false, reason: "encoded slash or backslash" };
      }
      if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: "encoded control character" };
      decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[h]}${HEX[l]}`;
      i += 2;
    } else if (c === 0x5c) {
      return { ok: false, reason: "backslash in path" };
    } else if (c === 0x23) {
      // Clients never send a fragment; an upstream would cut the path here, routing did not.
      return { ok: false, reason: "fragment in request target" };
    } else if (c < 0x20 || c === 0x7f) {
      return { ok: false, reason: "control character in path" };
    } else if (c > 0x7f) {
      const end = c >= 0xd800 && c <= 0xdbff ? i + 2 : i + 1;
      for (const b of new TextEncoder().encode(raw.slice(i, end))) {
        decoded += `%${HEX[b >> 4]}${HEX[b & 15]}`;
      }
      i = end - 1;
    } else if (isPathChar(c)) {
      decoded += raw[i];
    } else {
      // Space, quotes, brackets and the like are not allowed raw: escape them for the upstream.
      decoded += `%${HEX[c >> 4]}${HEX[c & 15]}`;
    }
  }

  // 2. Segments: merge slashes, resolve dot segments, refuse climbing above the root.
  const input = decoded.split("/");
  const out: string[] = [];
  const last = input.length - 1;
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    if (/^\.\.?;/.test(seg)) {
      return { ok: false, reason: "dot segment with parameters" };
    }
    // Servlet containers drop a segment's ;parameters: /admin;x is their /admin, not our route's.
    if (!allowParameters && seg.includes(";")) {
      return { ok: false, reason: "path segment with ;parameters" };
    }
    if (seg === ".") {
      if (i === last) out.push("");
      continue;
    }
    if (seg === "..") {
      if (out.length === 0) return { ok: false, reason: "path climbs above the root" };
      out.pop();
      if (i === last) out.push("");
      continue;
    }
    if (seg === "" && mergeSlashes && i !== last) continue;
    out.push(seg);
  }
  return { ok: true, path: "/" + out.join("/") };
}
