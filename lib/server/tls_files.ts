/**
 * A TLS listener's certificate and key, read and checked before any listener
 * opens: the same check for every kind of TLS listener, at start and on
 * reload. `node:https` (mTLS and TLS 1.3-only listeners) takes a key that is
 * not the certificate's and then fails every handshake, where `Deno.listenTls`
 * refuses to open; so the pair is checked here, with the file named. Neither
 * refuses an expired certificate, which no client accepts.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import type { ListenerConfig } from "./schema.ts";

type TlsConfig = NonNullable<ListenerConfig["tls"]>;

/** A TLS file that does not load; `field` is its key under `tls`. */
export class TlsFileError extends Error {
  constructor(readonly field: "cert" | "key", message: string) {
    super(message);
  }
}

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * The PEM texts of `tls.cert` and `tls.key`; throws `TlsFileError` unless they
 * load and pair. An expired certificate is refused too, unless `expired` is
 * given: then it is told there and served (see ListenerOptions.onExpiredCert).
 */
export async function readTlsFiles(
  tls: TlsConfig,
  resolvePath: (p: string) => string,
  expired?: (message: string) => void,
): Promise<TlsFiles> {
  // Read together, reported in order: with both unreadable, the error names tls.cert every time
  // (Promise.all gave whichever read failed first).
  const certRead = readTlsFile("cert", resolvePath(tls.cert));
  const keyRead = readTlsFile("key", resolvePath(tls.key));
  keyRead.catch(() => {});
  const cert = await certRead;
  const key = await keyRead;
  const leaf = parsed("cert", tls.cert, () => new X509Certificate(cert));
  const privateKey = parsed("key", tls.key, () => createPrivateKey(key));
  if (!leaf.checkPrivateKey(privateKey as KeyObject)) {
    throw new TlsFileError(
      "key",
      `tls.key ${tls.key} is not the private key of the certificate in tls.cert ${tls.cert}`,
    );
  }
  const end = Date.parse(leaf.validTo);
  if (Date.now() > end) {
    const message = `the certificate in tls.cert ${tls.cert} expired on ${
      new Date(end).toISOString()
    }`;
    if (expired === undefined) throw new TlsFileError("cert", message);
    expired(message);
  }
  return { cert, key };
}

function readTlsFile(field: "cert" | "key", path: string): Promise<string> {
  return Deno.readTextFile(path).catch((e) => {
    throw new TlsFileError(field, `cannot read tls.${field}: ${(e as Error).message}`);
  });
}

function parsed<T>(field: "cert" | "key", file: string, parse: () => T): T {
  try {
    return parse();
  } catch {
    const what = field === "cert" ? "certificate" : "private key";
    throw new TlsFileError(field, `tls.${field} ${file} holds no readable PEM ${what}`);
  }
}
