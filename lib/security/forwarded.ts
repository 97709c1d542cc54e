/**
 * The `Forwarded` header (RFC 7239): a comma-separated list of elements, one per
 * proxy hop, each a `;`-separated list of `name=value` pairs where a value may be
 * a quoted string. Only the `for=` node matters for the client address.
 */

/**
 * The `for=` node of each element, in order, unquoted (`192.0.2.1`,
 * `[2001:db8::1]:4711`, `unknown`, `_hidden`); null for an element without one
 * or that cannot be parsed.
 */
export function forwardedFor(value: string): (string | null)[] {
  const out: (string | null)[] = [];
  let i = 0;
  const n = value.length;
  while (i <= n) {
    let node: string | null = null;
    let bad = false;
    // One element: pairs until a comma outside quotes.
    while (i < n && value[i] !== ",") {
      const eq = value.indexOf("=", i);
      const stop = nextDelimiter(value, i);
      if (eq < 0 || eq > stop) {
        bad ||= value.slice(i, stop).trim() !== "";
        i = stop;
      } else {
        const name = value.slice(i, eq).trim().toLowerCase();
        let v: string;
        let j = eq + 1;
        while (j < n && (value[j] === " " || value[j] === "\t")) j++;
        if (value[j] === '"') {
          const q = readQuoted(value, j);
          if (q === null) return [...out, null];
          v = q.text;
          j = q.end;
          const after = nextDelimiter(value, j);
          bad ||= value.slice(j, after).trim() !== "";
          j = after;
        } else {
          const end = nextDelimiter(value, j);
          v = value.slice(j, end).trim();
          j = end;
        }
        if (name === "for") {
          if (node !== null) bad = true; // a repeated parameter makes the element invalid
          node = v;
        }
        i = j;
      }
      if (value[i] === ";") i++;
    }
    out.push(bad ? null : node);
    i++;
  }
  return out;
}

function nextDelimiter(s: string, from: number): number {
  for (let k = from; k < s.length; k++) if (s[k] === ";" || s[k] === ",") return k;
  return s.length;
}

function readQuoted(s: string, start: number): { text: string; end: number } | null {
  let text = "";
  for (let k = start + 1; k < s.length; k++) {
    const c = s[k]!;
    if (c === "\\") {
      k++;
      if (k >= s.length) return null;
      text += s[k];
    } else if (c === '"') return { text, end: k + 1 };
    else text += c;
  }
  return null;
}
