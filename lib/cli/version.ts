/** What `gateway version` prints. */
import denoJson from "../../deno.json" with { type: "json" };
import { BUILD_COMMIT } from "./build_info.ts";

export const VERSION: string = denoJson.version;

export function commit(): string {
  if (BUILD_COMMIT !== "") return BUILD_COMMIT;
  try {
    const out = new Deno.Command("git", {
      args: ["rev-parse", "--short=12", "HEAD"],
      stdout: "piped",
      stderr: "null",
      cwd: new URL("../..", import.meta.url).pathname,
    }).outputSync();
    if (out.success) return new TextDecoder().decode(out.stdout).trim() + "-dev";
  } catch {
    // No git, or not a checkout.
  }
  return "unknown";
}

export function versionText(): string {
  return `gateway ${VERSION} (commit ${commit()})\ndeno ${Deno.version.deno}, v8 ${Deno.version.v8}, typescript ${Deno.version.typescript}`;
}
