/**
 * Writes a `Response` onto a client connection as HTTP/1.1: the head and a
 * body of known size in one write, anything else streamed as it comes with
 * the socket's back-pressure (chunked, or up to the close on HTTP/1.0).
 */
import { bodySizeOf } from "../../observe/body_size.ts";
import { type Bytes, headWith } from "../../proxy/http1/bytes.ts";
import { STATUS_CODES } from "node:http";
import type { ClientConnection } from "./client_connection.ts";

/** Fields this writer owns: a handler's values for them would frame the body wrongly. */
const FRAMING = new Set(["connection", "keep-alive", "transfer-encoding", "content-length"]);
const COALESCE_BYTES = 16 * 1024;

let dateSecond = -1;
let dateLine = "";

/** The Date field, formatted once per second. */
function date(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

export interface WriteOptions {
  head: boolean; // a HEAD request: fields as for GET, no body
  http10: boolean;
  keepAlive: boolean;
}

/** Writes `res`; resolves to whether the connection can carry another request. */
export async function writeResponse(
  conn: ClientConnection,
  res: Response,
  o: WriteOptions,
): Promise<boolean> {
  const status = res.status;
  const noBody = o.head || status === 204 || status === 304 || status < 200;
  let declared = bodySizeOf(res) ?? -1;
  const sized = declared >= 0;
  let dated = false;
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? (res.statusText || "Unknown")}\r\n`;
  // forEach, not the iterator: measured 5x cheaper per response.
  res.headers.forEach((value, name) => {
    if (FRAMING.has(name)) {
      if (name === "content-length" && declared < 0 && /^\d{1,15}$/.test(value)) {
        declared = Number(value);
      }
      return;
    }
    if (name === "date") dated = true;
    text += `${name}: ${value}\r\n`;
  });
  // An upstream's Date is kept (it says when the representation was generated).
  if (!dated) text += date();

  if (sized && !noBody) {
    // Built from bytes: taken whole, never as a stream (res.body would make one; measured at 8 us).
    const bytes = await res.bytes();
    const head = `${text}content-length: ${bytes.length}\r\n${
      connectionLine(o.keepAlive, o.http10)
    }`;
    if (bytes.length <= COALESCE_BYTES) await conn.writeAll(headWith(head, bytes));
    else {
      await conn.writeAll(headWith(head));
      await conn.writeAll(bytes);
    }
    return o.keepAlive;
  }
  const body = sized ? null : res.body;

  if (noBody || body === null) {
    body?.cancel().catch(() => {});
    if (status !== 204 && status !== 304 && status >= 200) {
      // A HEAD answer carries the length a GET would have, when it is known.
      if (!o.head) text += "content-length: 0\r\n";
      else if (declared >= 0) text += `content-length: ${declared}\r\n`;
    }
    await conn.writeAll(headWith(text + connectionLine(o.keepAlive, o.http10)));
    return o.keepAlive;
  }

  const reader = body.getReader();
  try {
    if (declared >= 0) return await writeSized(conn, reader, text, declared, o);
    // Without a length, HTTP/1.0 delimits the body by closing the connection.
    const chunked = !o.http10;
    if (chunked) text += "transfer-encoding: chunked\r\n";
    const keepAlive = o.keepAlive && chunked;
    const head = headWith(text + connectionLine(keepAlive, o.http10));
    let first = await reader.read();
    if (first.done) {
      await conn.writeAll(chunked ? join(head, LAST_CHUNK) : head);
      return keepAlive;
    }
    // The head goes out with the first piece, so an event stream's first event is not held back.
    await conn.writeAll(join(head, chunked ? frame(first.value) : first.value));
    while (true) {
      first = await reader.read();
      if (first.done) break;
      if (first.value.length === 0) continue;
      await conn.writeAll(chunked ? frame(first.value) : first.value);
    }
    if (chunked) await conn.writeAll(LAST_CHUNK);
    return keepAlive;
  } catch (e) {
    reader.cancel(e).catch(() => {});
    throw e;
  }
}

async function writeSized(
  conn: ClientConnection,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  text: string,
  length: number,
  o: WriteOptions,
): Promise<boolean> {
  const head = headWith(
    `${text}content-length: ${length}\r\n${connectionLine(o.keepAlive, o.http10)}`,
  );
  let written = 0;
  let pendingHead: Uint8Array | null = head;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    written += value.length;
    if (written > length) throw new Error("Response body longer than its Content-Length");
    if (pendingHead !== null && value.length <= COALESCE_BYTES) {
      await conn.writeAll(join(pendingHead, value));
    } else {
      if (pendingHead !== null) await conn.writeAll(pendingHead);
      await conn.writeAll(value);
    }
    pendingHead = null;
  }
  if (pendingHead !== null) await conn.writeAll(pendingHead);
  if (written !== length) throw new Error("Response body shorter than its Content-Length");
  return o.keepAlive;
}

function connectionLine(keepAlive: boolean, http10: boolean): string {
  if (!keepAlive) return "connection: close\r\n\r\n";
  return http10 ? "connection: keep-alive\r\n\r\n" : "\r\n";
}

const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

function frame(chunk: Uint8Array): Uint8Array {
  const size = chunk.length.toString(16);
  const out = new Uint8Array(size.length + 2 + chunk.length + 2);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out[size.length] = 13;
  out[size.length + 1] = 10;
  out.set(chunk, size.length + 2);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

function join(a: Uint8Array, b: Uint8Array): Bytes {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
