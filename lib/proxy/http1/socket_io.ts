/** Plain socket plumbing shared by the relays (PROXY protocol front, upgrade tunnel) and the HTTP ends. */

/** What the relays need of a socket: a `Deno.Conn`, or a node socket adapted to it. */
export interface ByteSocket {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  /** Ends the sending side (a FIN); reading goes on. */
  closeWrite(): Promise<void>;
  close(): void;
}

/** Writes every byte (a socket write may take only part). */
export async function writeAllTo(to: Pick<ByteSocket, "write">, bytes: Uint8Array): Promise<void> {
  let off = await to.write(bytes);
  while (off < bytes.length) off += await to.write(bytes.subarray(off));
}

/**
 * Copies `from` into `to` until `from` ends; true on a clean end, false when
 * either side failed. `copied` sees the size of each piece written.
 */
export async function copySocket(
  from: ByteSocket,
  to: ByteSocket,
  bufferBytes: number,
  copied?: (bytes: number) => void,
): Promise<boolean> {
  const buf = new Uint8Array(bufferBytes);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return true;
      await writeAllTo(to, buf.subarray(0, n));
      copied?.(n);
    }
  } catch {
    return false;
  }
}

export function closeQuietly(c: ByteSocket): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}
