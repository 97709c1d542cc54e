/** Loads config text through the real loader and returns its errors as printed. */
import { ConfigError, formatIssue } from "../../lib/config/issues.ts";
import { loadConfigFile } from "../../lib/config/load.ts";

/** Every error of `yaml`, formatted, with the temp folder cut so that lines read `gateway.yaml:…`. */
export async function configErrors(yaml: string): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "gw-config-" });
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(file, yaml);
  try {
    await loadConfigFile(file, () => undefined);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => formatIssue(i).replace(`${dir}/`, ""));
    throw e;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  throw new Error("expected a configuration error");
}
