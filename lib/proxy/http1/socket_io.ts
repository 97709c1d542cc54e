/** Plain socket plumbing shared by the relays (PROXY protocol front, upgrade tunnel) and the HTTP ends. */

/** Writes every byte (a socket write may take only part). */
export async function writeAllTo(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = await to.write(bytes);
  while (off < bytes.length) off += await to.write(bytes.subarray(off));
}

/** Copies `from` into `to` until `from` ends; true on a clean end, false when either side failed. */
export async function copySocket(
  from: Deno.Conn,
  to: Deno.Conn,
  bufferBytes: number,
): Promise<boolean> {
  const buf = new Uint8Array(bufferBytes);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return true;
      await writeAllTo(to, buf.subarray(0, n));
    }
  } catch {
    return false;
  }
}

export function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
