/** Certificates for tests of TLS listeners. */
import { assertOk } from "./assert.ts";

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
