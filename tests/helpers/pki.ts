/**
 * Certificates made with openssl for the test at hand, in a temp folder: a CA,
 * and certificates it (or an intermediate) issues with the extensions a test
 * names. Every certificate shares one P-256 key, so any of them pairs with `key`;
 * each PKI has its own key, so certificates of two PKIs never chain to each other.
 */
import { assertOk } from "./assert.ts";

/** A certificate made for a test: its PEM text and where it lies. */
export interface TestCert {
  readonly file: string;
  readonly pem: string;
}

export interface TestPki {
  readonly dir: string;
  /**
   * The self-signed root, with basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign
   * (`CA_EXTENSIONS`), or the extensions `makeTestPki` was given.
   */
  readonly ca: TestCert;
  /** The PEM key of every certificate here, and its file. */
  readonly key: string;
  readonly keyFile: string;
  /**
   * A certificate for `cn` signed by `issuer` (the root by default), with the
   * extensions in `extensions` (openssl extfile lines, sections after them too),
   * or none at all (X.509 v1) when it is null. A `cn` that starts with `/` is the
   * whole subject, in openssl's `-subj` form (`/O=Acme/CN=client`).
   */
  issue(cn: string, extensions: string | null, issuer?: TestCert): Promise<TestCert>;
  close(): Promise<void>;
}

export const CA_EXTENSIONS =
  "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign";

/** `caExtensions`: the root's, as openssl config lines (sections after them too). */
export async function makeTestPki(caExtensions = CA_EXTENSIONS): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "gw-pki-" });
  const keyFile = `${dir}/key.pem`;
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile]);
  const caFile = `${dir}/ca.crt`;
  await Deno.writeTextFile(
    `${dir}/ca.cnf`,
    `[req]\ndistinguished_name = dn\n[dn]\n[root]\n${caExtensions}\n`,
  );
  await openssl([
    ...["req", "-x509", "-new", "-key", keyFile, "-days", "2", "-subj", "/CN=Test PKI Root"],
    ...["-config", `${dir}/ca.cnf`, "-extensions", "root", "-out", caFile],
  ]);
  const read = async (file: string): Promise<TestCert> => ({
    file,
    pem: await Deno.readTextFile(file),
  });
  const ca = await read(caFile);
  let serial = 1;
  return {
    dir,
    ca,
    key: await Deno.readTextFile(keyFile),
    keyFile,
    async issue(cn, extensions, issuer = ca) {
      const name = `${dir}/${serial++}`;
      const subject = cn.startsWith("/") ? cn : `/CN=${cn}`;
      await openssl(["req", "-new", "-key", keyFile, "-subj", subject, "-out", `${name}.csr`]);
      const withExtensions = extensions === null ? [] : ["-extfile", `${name}.ext`];
      if (extensions !== null) await Deno.writeTextFile(`${name}.ext`, `${extensions}\n`);
      await openssl([
        ...["x509", "-req", "-in", `${name}.csr`, "-CA", issuer.file, "-CAkey", keyFile],
        ...["-set_serial", String(serial), "-days", "2", ...withExtensions, "-out", `${name}.crt`],
      ]);
      return read(`${name}.crt`);
    },
    close: () => Deno.remove(dir, { recursive: true }),
  };
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  assertOk(out.success, `openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}
