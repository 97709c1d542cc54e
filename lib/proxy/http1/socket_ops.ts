/**
 * The reads and writes of the HTTP/1.1 ends, through the runtime's socket ops.
 *
 * `Deno.Conn`'s `read` and `write` wrap deno_core's `read(rid, buffer)` and
 * `write(rid, buffer)`: each call adds an async function (a promise and a
 * resumption), and a read adds its promise to a per-connection `Set` and
 * removes it (kept for `unref`, which the gateway never calls). A proxied
 * request makes four such calls; without the wrappers the serving thread runs
 * 5.2 % fewer instructions per request (bench/NOTES.md, "Socket calls under
 * the wrappers"). The ops are the runtime's internals, not its public API, so
 * where they are missing the public methods are used, to the same effect.
 */

/** A socket's reads and writes. */
export interface SocketOps {
  /** Reads into `into`; resolves to how many bytes, 0 at the end of the stream. */
  read(into: Uint8Array): Promise<number>;
  /** Writes from `from`; resolves to how many bytes were taken (maybe not all). */
  write(from: Uint8Array): Promise<number>;
}

/** What the gateway uses of deno_core's JavaScript API. */
export interface RuntimeCore {
  read(rid: number, into: Uint8Array): Promise<number>;
  write(rid: number, from: Uint8Array): Promise<number>;
  internalRidSymbol: symbol;
}

/** deno_core's API, if this runtime has it in the shape used here; else null. */
export function runtimeCore(): RuntimeCore | null {
  const internal = (Deno as unknown as { internal?: symbol }).internal;
  if (typeof internal !== "symbol") return null;
  const core =
    (Deno as unknown as Record<symbol, { core?: Partial<RuntimeCore> } | undefined>)[internal]
      ?.core;
  const usable = typeof core?.read === "function" && typeof core.write === "function" &&
    typeof core.internalRidSymbol === "symbol";
  return usable ? core as RuntimeCore : null;
}

const CORE = runtimeCore();

/** The ops for `conn`: the runtime's by resource id where it has them, else the public methods. */
export function socketOps(conn: Deno.Conn, core: RuntimeCore | null = CORE): SocketOps {
  const rid = core === null
    ? undefined
    : (conn as unknown as Record<symbol, unknown>)[core.internalRidSymbol];
  return typeof rid === "number" ? new ResourceOps(core!, rid) : new ConnOps(conn);
}

/** Straight to the ops, by the socket's resource id. */
export class ResourceOps implements SocketOps {
  constructor(private readonly core: RuntimeCore, private readonly rid: number) {}

  read(into: Uint8Array): Promise<number> {
    // The op waits for data even for an empty buffer; `Deno.Conn.read` answers 0 at once.
    return into.length === 0 ? Promise.resolve(0) : this.core.read(this.rid, into);
  }

  write(from: Uint8Array): Promise<number> {
    return this.core.write(this.rid, from);
  }
}

/** Through `Deno.Conn`'s methods. */
export class ConnOps implements SocketOps {
  constructor(private readonly conn: Deno.Conn) {}

  read(into: Uint8Array): Promise<number> {
    return this.conn.read(into).then(zeroAtEnd);
  }

  write(from: Uint8Array): Promise<number> {
    return this.conn.write(from);
  }
}

const zeroAtEnd = (n: number | null): number => n ?? 0;
