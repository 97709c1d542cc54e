/** Certificates for tests of TLS listeners. */
import { assertOk } from "./assert.ts";
import { parseResponse, type RawResponse } from "./raw.ts";

/**
 * A self-signed certificate for `localhost` and 127.0.0.1, written to
 * `dir/cert.pem` and `dir/key.pem`. Not a CA: rustls refuses one as a server's.
 */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  assertOk(out.success, "openssl could not make a test certificate");
  return { cert, key };
}

/** What one `openssl s_client` exchange gave. */
export interface OpensslExchange {
  readonly response: RawResponse;
  /** Whether the TLS session was resumed rather than a full handshake. */
  readonly resumed: boolean;
}

/**
 * A GET with `Connection: close` over `openssl s_client`, presenting the `cert`
 * and `key` files, and the intermediates in the `chain` file when given.
 * `session` is the file the TLS session is saved to, and resumed from once it
 * exists. openssl presents certificates that Deno's own TLS client refuses to
 * send (X.509 v1, unknown critical extensions).
 */
export async function opensslGet(
  baseUrl: string,
  path: string,
  o: { cert: string; key: string; session: string; chain?: string },
): Promise<OpensslExchange> {
  const { host } = new URL(baseUrl);
  const resume = await Deno.stat(o.session).then(() => true, () => false);
  const child = new Deno.Command("openssl", {
    args: [
      ...["s_client", "-connect", host, "-cert", o.cert, "-key", o.key, "-ign_eof"],
      ...(resume ? ["-sess_in", o.session] : ["-sess_out", o.session]),
      ...(o.chain ? ["-cert_chain", o.chain] : []),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(10_000),
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
  );
  await writer.close();
  const out = new TextDecoder().decode((await child.output()).stdout);
  const start = out.indexOf("HTTP/1.1 ");
  return {
    response: parseResponse(start < 0 ? "" : out.slice(start)),
    resumed: /^Reused, /m.test(out),
  };
}
