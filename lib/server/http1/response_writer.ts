/**
 * Writes a `Response` onto a client connection as HTTP/1.1: the head and a
 * body of known size in one write, anything else streamed as it comes with
 * the socket's back-pressure (chunked, or up to the close on HTTP/1.0).
 */
import { bodySizeOf } from "../../observe/body_size.ts";
import { ParsedResponse, unreadFields } from "../../core/parsed_response.ts";
import { STATUS_CODES } from "node:http";
import type { ClientConnection } from "./client_connection.ts";
import { NameSet } from "../../core/name_set.ts";
import { wallNow } from "../../core/clock.ts";

/** Fields this writer owns: a handler's values for them would frame the body wrongly. */
const FRAMING = new NameSet(["connection", "keep-alive", "transfer-encoding", "content-length"]);
const COALESCE_BYTES = 16 * 1024;

let dateSecond = -1;
let dateLine = "";

/** The Date field, formatted once per second. */
function date(): string {
  const now = wallNow();
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
export function writeResponse(
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
  // One loop with no closure: locals a closure writes to live on the heap, read and written there.
  const fields = unreadFields(res) ?? fieldsOf(res.headers);
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i]!;
    if (FRAMING.has(name)) {
      if (name === "content-length" && declared < 0 && /^\d{1,15}$/.test(value)) {
        declared = Number(value);
      }
      continue;
    }
    if (name === "date") dated = true;
    text += `${name}: ${value}\r\n`;
  }
  // An upstream's Date is kept (it says when the representation was generated).
  if (!dated) text += date();
  // Not async where one write does: the common answers settle with no async layer of their own.
  const settled = o.keepAlive ? KEEP_ALIVE : CLOSE;

  if (sized && !noBody) {
    const held = ParsedResponse.held(res);
    if (held === null) return writeBytes(conn, res, text, o);
    // The listener is the body's last reader: the held bytes go out as they are.
    const length = `content-length: ${held.length}\r\n`;
    return conn.writeHead(text + length + connectionLine(o.keepAlive, o.http10) + held)
      .then(settled);
  }
  const body = sized ? null : res.body;

  if (noBody || body === null) {
    body?.cancel().catch(() => {});
    if (status !== 204 && status !== 304 && status >= 200) {
      // A HEAD answer carries the length a GET would have, when it is known.
      if (!o.head) text += "content-length: 0\r\n";
      else if (declared >= 0) text += `content-length: ${declared}\r\n`;
    }
    return conn.writeHead(text + connectionLine(o.keepAlive, o.http10)).then(settled);
  }
  return writeStreamed(conn, body, text, declared, o);
}

/** The fields of a Response built by the gateway (forEach, not the iterator: measured 5x cheaper). */
function fieldsOf(headers: Headers): [string, string][] {
  const list: [string, string][] = [];
  headers.forEach((value, name) => list.push([name, value]));
  return list;
}

const KEEP_ALIVE = () => true;
const CLOSE = () => false;

/** A body built from bytes: taken whole, never as a stream (res.body would make one; measured at 8 us). */
async function writeBytes(
  conn: ClientConnection,
  res: Response,
  text: string,
  o: WriteOptions,
): Promise<boolean> {
  const bytes = await res.bytes();
  const head = `${text}content-length: ${bytes.length}\r\n${connectionLine(o.keepAlive, o.http10)}`;
  if (bytes.length <= COALESCE_BYTES) await conn.writeHead(head, bytes);
  else {
    await conn.writeHead(head);
    await conn.writeAll(bytes);
  }
  return o.keepAlive;
}

async function writeStreamed(
  conn: ClientConnection,
  body: ReadableStream<Uint8Array>,
  text: string,
  declared: number,
  o: WriteOptions,
): Promise<boolean> {
  const pieces = new BodyPieces(body, declared);
  try {
    if (declared >= 0) return await writeSized(conn, pieces, text, declared, o);
    // Without a length, HTTP/1.0 delimits the body by closing the connection.
    const chunked = !o.http10;
    if (chunked) text += "transfer-encoding: chunked\r\n";
    const keepAlive = o.keepAlive && chunked;
    const head = text + connectionLine(keepAlive, o.http10);
    let piece = await pieces.next();
    if (piece === null) {
      await conn.writeHead(head, chunked ? LAST_CHUNK : undefined);
      return keepAlive;
    }
    // The head goes out with the first piece, so an event stream's first event is not held back.
    await conn.writeHead(head, chunked ? pieces.framed(piece) : piece);
    while ((piece = await pieces.next()) !== null) {
      await conn.writeAll(chunked ? pieces.framed(piece) : piece);
    }
    if (chunked) await conn.writeAll(LAST_CHUNK);
    return keepAlive;
  } catch (e) {
    pieces.cancel(e);
    throw e;
  }
}

async function writeSized(
  conn: ClientConnection,
  pieces: BodyPieces,
  text: string,
  length: number,
  o: WriteOptions,
): Promise<boolean> {
  const head = `${text}content-length: ${length}\r\n${connectionLine(o.keepAlive, o.http10)}`;
  let written = 0;
  let pendingHead: string | null = head;
  let piece: Uint8Array | null;
  while ((piece = await pieces.next()) !== null) {
    written += piece.length;
    if (written > length) throw new Error("Response body longer than its Content-Length");
    if (pendingHead !== null && piece.length <= COALESCE_BYTES) {
      await conn.writeHead(pendingHead, piece);
    } else {
      if (pendingHead !== null) await conn.writeHead(pendingHead);
      await conn.writeAll(piece);
    }
    pendingHead = null;
  }
  if (pendingHead !== null) await conn.writeHead(pendingHead);
  if (written !== length) throw new Error("Response body shorter than its Content-Length");
  return o.keepAlive;
}

/** Room kept in front of each BYOB piece for its chunk-size line ("10000\r\n" at most). */
const FRAME_ROOM = 8;
/**
 * A body of unknown length is read into 16 KiB at first, doubling each time
 * a read fills the buffer: an open event stream waiting for its next event
 * pins 16 KiB, not 64. A body of known length starts at its size (up to 64).
 */
const FIRST_PIECE_BYTES = 16 * 1024;
const MAX_PIECE_BYTES = 64 * 1024;

/**
 * A body's pieces, each valid until the next is asked for. A byte stream is
 * read BYOB into one buffer used over and over (a 200 MB download through
 * the writer allocates a handful of buffers, not one per piece) with room
 * around each piece to frame it as a chunk in place; any other stream yields
 * its own pieces.
 */
class BodyPieces {
  private byob: ReadableStreamBYOBReader | null = null;
  private plain: ReadableStreamDefaultReader<Uint8Array> | null = null;
  /** The buffer the next BYOB read fills; null when a bigger one is due. */
  private spare: ArrayBuffer | null = null;
  /** The buffer holding the piece last returned (framed in place). */
  private holding: ArrayBuffer | null = null;
  private pieceBytes: number;

  constructor(body: ReadableStream<Uint8Array>, length: number) {
    this.pieceBytes = length < 0
      ? FIRST_PIECE_BYTES
      : Math.min(Math.max(length, 1024), MAX_PIECE_BYTES);
    try {
      this.byob = body.getReader({ mode: "byob" });
    } catch {
      this.plain = body.getReader();
    }
  }

  /** The next non-empty piece, or null at the end of the body. */
  async next(): Promise<Uint8Array | null> {
    if (this.byob === null) {
      while (true) {
        const { done, value } = await this.plain!.read();
        if (done) return null;
        if (value.length > 0) return value;
      }
    }
    const buffer = this.spare ?? new ArrayBuffer(FRAME_ROOM + this.pieceBytes + 2);
    this.spare = this.holding = null;
    const { done, value } = await this.byob.read(
      new Uint8Array(buffer, FRAME_ROOM, this.pieceBytes),
    );
    if (done) return null;
    this.holding = value.buffer as ArrayBuffer;
    // A full read asks for a buffer twice the size next time.
    if (value.length === this.pieceBytes && this.pieceBytes < MAX_PIECE_BYTES) this.pieceBytes *= 2;
    else this.spare = this.holding;
    return value;
  }

  /** `piece` as one chunk of a chunked body: in place for a BYOB piece, else copied. */
  framed(piece: Uint8Array): Uint8Array {
    if (piece.buffer !== this.holding) return frame(piece);
    const size = piece.length.toString(16);
    const start = FRAME_ROOM - size.length - 2;
    const out = new Uint8Array(piece.buffer, start, size.length + 2 + piece.length + 2);
    writeSizeLine(out, size);
    out[out.length - 2] = 13;
    out[out.length - 1] = 10;
    return out;
  }

  cancel(reason: unknown): void {
    (this.byob ?? this.plain)!.cancel(reason).catch(() => {});
  }
}

function connectionLine(keepAlive: boolean, http10: boolean): string {
  if (!keepAlive) return "connection: close\r\n\r\n";
  return http10 ? "connection: keep-alive\r\n\r\n" : "\r\n";
}

const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

function writeSizeLine(out: Uint8Array, size: string): void {
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out[size.length] = 13;
  out[size.length + 1] = 10;
}

function frame(chunk: Uint8Array): Uint8Array {
  const size = chunk.length.toString(16);
  const out = new Uint8Array(size.length + 2 + chunk.length + 2);
  writeSizeLine(out, size);
  out.set(chunk, size.length + 2);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}
