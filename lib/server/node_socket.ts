/**
 * A `node:net` socket seen as the relays see a `Deno.Conn` (read, write,
 * close), for a WebSocket upgrade on a `node:https` listener: node hands such
 * a request over with its raw socket, which the upgrade tunnel then joins to
 * the upstream's.
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ByteSocket } from "../proxy/http1/socket_io.ts";
import { lingerLimits } from "./lingering.ts";

export function byteSocketOf(socket: Duplex): ByteSocket {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failed: Error | null = null;
  let wake: (() => void) | null = null;
  const wakeReader = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // Not paused: Deno 2.9.6's `node:tls` reads a paused socket all the same
  // (README, Known limits), holding what comes where nothing can count it.
  // Flowing, each piece is counted as it arrives, and past MAX_HELD_BYTES
  // that the relay has not taken the session ends rather than grow.
  let held = 0;
  socket.on("data", (chunk: Uint8Array) => {
    held += chunk.length;
    if (held > MAX_HELD_BYTES) {
      socket.destroy(new Error("The client sent more than the upstream took"));
      return;
    }
    chunks.push(chunk);
    wakeReader();
  });
  socket.on("end", () => {
    ended = true;
    wakeReader();
  });
  socket.on("error", (e: Error) => {
    failed = e;
    wakeReader();
  });
  socket.on("close", () => {
    ended = true;
    wakeReader();
  });
  // The relay passes a client's FIN on and goes on writing: node would end the socket at it.
  (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;

  return {
    async read(p: Uint8Array): Promise<number | null> {
      while (chunks.length === 0) {
        if (failed !== null) throw failed;
        if (ended) return null;
        await new Promise<void>((r) => wake = r);
      }
      const chunk = chunks[0]!;
      const n = Math.min(p.length, chunk.length);
      p.set(chunk.subarray(0, n));
      held -= n;
      if (n === chunk.length) chunks.shift();
      else chunks[0] = chunk.subarray(n);
      return n;
    },
    write: (p: Uint8Array) => writeTo(socket, p).then(() => p.length),
    closeWrite: () =>
      new Promise((resolve) => {
        // A destroyed socket may never call end's callback back.
        if (socket.destroyed) return resolve();
        socket.once("close", resolve);
        socket.end(resolve);
      }),
    close(): void {
      socket.destroy();
    },
  };
}

const MAX_HELD_BYTES = 16 * 1024 * 1024;

/**
 * Writes `res` on a raw socket that nothing else will use (an upgrade the
 * gateway refused, or the upstream declined), closing it after the body.
 */
export async function writeAndClose(socket: Duplex, res: Response): Promise<void> {
  let head = `HTTP/1.1 ${res.status} ${res.statusText || STATUS_CODES[res.status] || ""}\r\n`;
  for (const [name, value] of res.headers) {
    if (name !== "connection" && name !== "transfer-encoding" && name !== "content-length") {
      head += `${name}: ${value}\r\n`;
    }
  }
  if (!res.headers.has("date")) head += `date: ${new Date().toUTCString()}\r\n`;
  // The body runs to the close (RFC 9112 §6.3): no framing to get wrong.
  head += "connection: close\r\n\r\n";
  // Whatever the client still sends is dropped; its end is what the close waits for.
  socket.resume();
  try {
    await writeTo(socket, new TextEncoder().encode(head));
    if (res.body !== null) {
      for await (const chunk of res.body) await writeTo(socket, chunk);
    }
    // Closed once the client has read to the end and closed too, within the linger's limits.
    const limits = lingerLimits(() => socket.destroy());
    socket.on("data", limits.touch);
    socket.once("close", limits.stop);
    socket.once("end", () => socket.destroy());
    socket.end();
  } catch {
    socket.destroy();
  }
}

/** Settles once node has handed the bytes on: until then it holds the caller's buffer. */
function writeTo(socket: Duplex, bytes: Uint8Array): Promise<void> {
  if (socket.destroyed) return Promise.reject(new Error("The client's socket is closed"));
  return new Promise((resolve, reject) => socket.write(bytes, (e) => e ? reject(e) : resolve()));
}
