/**
 * Files a plan's build read besides the config (JWT key files), with a digest
 * of what each held: a reload of an unchanged config text builds again when
 * one of them changed, as it does for a listener's TLS files.
 */
import { createHash } from "node:crypto";

/** SHA-256 of a file's text, by its resolved path. */
export type FilesRead = ReadonlyMap<string, string>;

export function textDigest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Whether one of `files` holds other text now, or cannot be read (the rebuild then says why). */
export async function filesChanged(files: FilesRead): Promise<boolean> {
  for (const [path, digest] of files) {
    const text = await Deno.readTextFile(path).catch(() => null);
    if (text === null || textDigest(text) !== digest) return true;
  }
  return false;
}
